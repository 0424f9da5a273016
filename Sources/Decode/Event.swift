import IrqscopeABI

/// A lifecycle event as the kernel reported it, decoded from `struct irqscope_event`.
public struct Event: Sendable, Equatable {
    public var timeNs: UInt64
    /// The hooked function's return value, where it has one (0 otherwise).
    public var result: Int64
    public var source: EventSource
    public var tgid: UInt32
    public var pid: UInt32
    public var cpu: UInt32
    public var irq: Int32?
    public var comm: String
    /// PCI address ("0000:00:03.0"), when the kernel object behind the event is a PCI device.
    public var device: String?
    public var kind: Kind

    public enum Kind: Sendable, Equatable {
        case msixEnable(minVectors: Int32, maxVectors: Int32, flags: UInt32)
        case msixAdd(indexRequested: UInt32, indexAllocated: Int32?)
        case msixDisable
        case msiAlloc(MSIRange)
        case msiFree(MSIRange)
        case irteAlloc(count: UInt32, msiIndex: UInt32?)
        case irteFree(count: UInt32)
        case irteActivate(reserve: Bool)
        case irteDeactivate
        case irtePosted(Bool)
        case piUpdate(vcpu: UInt32?, gsi: UInt32, guestVector: UInt32, set: Bool)
        case requestIRQ(name: String, flags: UInt64)
        /// `interrupts`: the irq's handled interrupts since attach as it was freed (nil: not counted)
        case freeIRQ(name: String, interrupts: UInt64?)
        case vfioSetIRQs(VFIOSetIRQs)
        case vectorReserve(managed: Bool)
        case vectorAlloc(vector: UInt32, fromReservation: Bool, managed: Bool)
        case vectorActivate(VectorActivation)
        case vectorDeactivate(VectorActivation)
        case vectorTeardown(managed: Bool, hadReservation: Bool)
        case vectorConfig(vector: UInt32, cpu: UInt32, apicDestination: UInt32)
        case matrix(MatrixUpdate)
        /// irqs `irq ..< irq + count` allocated for one MSI descriptor of `device`.
        case irqAlloc(count: UInt32, msiIndex: UInt32?)
        case irqFree(count: UInt32)
        /// `count` interrupts on the irq that every action returned IRQ_NONE for, since the last report.
        case unhandled(count: UInt64)
        /// The irq's first handled interrupt since its vector was activated (on this CPU; two
        /// CPUs taking its first interrupts at once may both report one).
        case firstInterrupt
    }

    public init(
        timeNs: UInt64, result: Int64 = 0, source: EventSource = .tracepoint,
        tgid: UInt32, pid: UInt32, cpu: UInt32 = 0, irq: Int32? = nil, comm: String, device: String? = nil,
        kind: Kind
    ) {
        self.timeNs = timeNs
        self.result = result
        self.source = source
        self.tgid = tgid
        self.pid = pid
        self.cpu = cpu
        self.irq = irq
        self.comm = comm
        self.device = device
        self.kind = kind
    }
}

public struct MSIRange: Sendable, Equatable {
    /// MSI index range, when the kernel function says (6.2+).
    public var first: UInt32?
    public var last: UInt32?
    public var count: UInt32
    public init(first: UInt32? = nil, last: UInt32? = nil, count: UInt32) {
        self.first = first
        self.last = last
        self.count = count
    }
}

public struct VFIOSetIRQs: Sendable, Equatable {
    public var flags: UInt32
    public var index: UInt32
    public var start: UInt32
    public var count: UInt32
    public init(flags: UInt32, index: UInt32, start: UInt32, count: UInt32) {
        self.flags = flags
        self.index = index
        self.start = start
        self.count = count
    }

    // include/uapi/linux/vfio.h
    public static let dataNone: UInt32 = 1 << 0
    public static let dataBool: UInt32 = 1 << 1
    public static let dataEventfd: UInt32 = 1 << 2
    public static let actionMask: UInt32 = 1 << 3
    public static let actionUnmask: UInt32 = 1 << 4
    public static let actionTrigger: UInt32 = 1 << 5
    public static let indexINTx: UInt32 = 0
    public static let indexMSI: UInt32 = 1
    public static let indexMSIX: UInt32 = 2

    /// DATA_NONE|ACTION_TRIGGER with count 0: tear the whole index down.
    public var isDisable: Bool { flags & Self.dataNone != 0 && flags & Self.actionTrigger != 0 && count == 0 }
    public var isEventfdTrigger: Bool { flags & Self.dataEventfd != 0 && flags & Self.actionTrigger != 0 }

    /// VFIO_PCI_*_IRQ_INDEX by name; 5 (VFIO_PCI_NUM_IRQS) is vfio-pci's own "no interrupt type on".
    public var indexName: String { ["INTx", "MSI", "MSI-X", "ERR", "REQ", "none"][safe: Int(index)] ?? "index \(index)" }

    public var actionName: String {
        if isDisable { return "disable" }
        let data = flags & Self.dataEventfd != 0 ? "eventfd" : flags & Self.dataBool != 0 ? "bool" : nil
        if flags & Self.actionTrigger != 0 { return data == "eventfd" ? "eventfds" : "trigger" + (data.map { " (\($0))" } ?? "") }
        // an unmask through an eventfd is KVM's resampler of a level-triggered INTx line
        if flags & Self.actionUnmask != 0 { return "unmask" + (data.map { " (\($0))" } ?? "") }
        if flags & Self.actionMask != 0 { return "mask" + (data.map { " (\($0))" } ?? "") }
        return "flags 0x\(String(flags, radix: 16))"
    }

    /// Why a failure with this errno changes nothing, when it does not (vfio_pci_intrs.c,
    /// vfio_pci_core.c).
    public func harmlessFailure(errno: Int32) -> String? {
        switch (index, errno) {
        case (5, 25) where isDisable: // ENOTTY
            "vfio-pci's own teardown when the device is closed, with no interrupt type on"
        case (0...2, 22) where isDisable: // EINVAL
            "that interrupt type was not on, nothing to disable"
        case (3, 25): // ENOTTY
            "not a PCI Express device: it has no error signal, the VMM goes on without one"
        default:
            nil
        }
    }
}

public struct VectorActivation: Sendable, Equatable {
    public var managed: Bool
    public var canReserve: Bool
    public var reserve: Bool
    public init(managed: Bool, canReserve: Bool, reserve: Bool) {
        self.managed = managed
        self.canReserve = canReserve
        self.reserve = reserve
    }
}

/// The CPU vector matrix after an irq_matrix tracepoint: global counts always, the
/// per-CPU counts of `cpu` when the tracepoint concerns one CPU.
public struct MatrixUpdate: Sendable, Equatable {
    public var op: MatrixOp
    public var bit: Int32?
    public var perCPU: PerCPU?
    public var onlineMaps: UInt32
    public var globalAvailable: UInt32
    public var globalReserved: UInt32
    public var totalAllocated: UInt32

    public struct PerCPU: Sendable, Equatable {
        public var cpu: UInt32
        public var online: Bool
        public var available: UInt32
        public var allocated: UInt32
        public var managed: UInt32
        public init(cpu: UInt32, online: Bool, available: UInt32, allocated: UInt32, managed: UInt32) {
            self.cpu = cpu
            self.online = online
            self.available = available
            self.allocated = allocated
            self.managed = managed
        }
    }

    public init(
        op: MatrixOp, bit: Int32? = nil, perCPU: PerCPU? = nil, onlineMaps: UInt32, globalAvailable: UInt32,
        globalReserved: UInt32, totalAllocated: UInt32
    ) {
        self.op = op
        self.bit = bit
        self.perCPU = perCPU
        self.onlineMaps = onlineMaps
        self.globalAvailable = globalAvailable
        self.globalReserved = globalReserved
        self.totalAllocated = totalAllocated
    }
}

public enum MatrixOp: UInt32, Sendable, CaseIterable {
    case online = 1, offline, reserve, removeReserved, assignSystem, alloc, free, assign, allocManaged,
        reserveManaged, removeManaged

    public var tracepoint: String {
        switch self {
        case .online: "irq_matrix_online"
        case .offline: "irq_matrix_offline"
        case .reserve: "irq_matrix_reserve"
        case .removeReserved: "irq_matrix_remove_reserved"
        case .assignSystem: "irq_matrix_assign_system"
        case .alloc: "irq_matrix_alloc"
        case .free: "irq_matrix_free"
        case .assign: "irq_matrix_assign"
        case .allocManaged: "irq_matrix_alloc_managed"
        case .reserveManaged: "irq_matrix_reserve_managed"
        case .removeManaged: "irq_matrix_remove_managed"
        }
    }
}

/// The kernel function (or tracepoint) that produced an event.
public enum EventSource: UInt32, Sendable, CaseIterable {
    case tracepoint = 0
    case pciAllocIRQVectors = 1
    case pciEnableMSIXRangeInternal = 2
    case pciEnableMSIXRange = 3
    case pciMSIXAllocIRQAt = 4
    case pciMSIXShutdown = 5
    case pciDisableMSIX = 6
    case msiDomainAllocInternal = 7
    case msiDomainAllocDescsLocked = 8
    case msiDomainAllocAllLocked = 9
    case msiDomainAllocRangeLocked = 10
    case msiDomainFreeInternal = 11
    case msiDomainFreeDescsLocked = 12
    case msiDomainFreeAllLocked = 13
    case msiDomainFreeRangeLocked = 14
    case intelIR = 15
    case amdIR = 16
    case requestThreadedIRQ = 17
    case freeIRQ = 18
    case vfioPCISetIRQsIoctl = 19
    case pciFreeIRQVectors = 20
    case msiDomainOps = 21

    public var name: String {
        switch self {
        case .tracepoint: "tracepoint"
        case .pciAllocIRQVectors: "pci_alloc_irq_vectors_affinity"
        case .pciEnableMSIXRangeInternal: "__pci_enable_msix_range"
        case .pciEnableMSIXRange: "pci_enable_msix_range"
        case .pciMSIXAllocIRQAt: "pci_msix_alloc_irq_at"
        case .pciMSIXShutdown: "pci_msix_shutdown"
        case .pciDisableMSIX: "pci_disable_msix"
        case .msiDomainAllocInternal: "__msi_domain_alloc_irqs"
        case .msiDomainAllocDescsLocked: "msi_domain_alloc_irqs_descs_locked"
        case .msiDomainAllocAllLocked: "msi_domain_alloc_irqs_all_locked"
        case .msiDomainAllocRangeLocked: "msi_domain_alloc_irqs_range_locked"
        case .msiDomainFreeInternal: "__msi_domain_free_irqs"
        case .msiDomainFreeDescsLocked: "msi_domain_free_irqs_descs_locked"
        case .msiDomainFreeAllLocked: "msi_domain_free_irqs_all_locked"
        case .msiDomainFreeRangeLocked: "msi_domain_free_irqs_range_locked"
        case .intelIR: "intel-ir"
        case .amdIR: "amd-ir"
        case .requestThreadedIRQ: "request_threaded_irq"
        case .freeIRQ: "free_irq"
        case .vfioPCISetIRQsIoctl: "vfio_pci_set_irqs_ioctl"
        case .pciFreeIRQVectors: "pci_free_irq_vectors"
        case .msiDomainOps: "msi_domain_ops"
        }
    }
}

extension Event.Kind {
    /// Work a process asked for (an ioctl, a driver setting up its device): the issuing process
    /// is the one the event is about. The other kinds can fire in interrupt context (an interrupt's
    /// exit, a vector moved or freed by the IRQ machinery), where the current task is whoever the
    /// interrupt happened to stop: they are attributed through their irq and device only.
    public var isProcessCall: Bool {
        switch self {
        case .unhandled, .firstInterrupt, .matrix, .vectorConfig, .vectorAlloc: false
        default: true
        }
    }

    /// The stable event name used in JSON output and documentation.
    public var name: String {
        switch self {
        case .msixEnable: "msix_enable"
        case .msixAdd: "msix_add"
        case .msixDisable: "msix_disable"
        case .msiAlloc: "msi_alloc"
        case .msiFree: "msi_free"
        case .irteAlloc: "irte_alloc"
        case .irteFree: "irte_free"
        case .irteActivate: "irte_activate"
        case .irteDeactivate: "irte_deactivate"
        case .irtePosted: "irte_posted"
        case .piUpdate: "pi_update"
        case .requestIRQ: "request_irq"
        case .freeIRQ: "free_irq"
        case .vfioSetIRQs: "vfio_set_irqs"
        case .vectorReserve: "vector_reserve"
        case .vectorAlloc: "vector_alloc"
        case .vectorActivate: "vector_activate"
        case .vectorDeactivate: "vector_deactivate"
        case .vectorTeardown: "vector_teardown"
        case .vectorConfig: "vector_config"
        case .matrix: "matrix"
        case .irqAlloc: "irq_alloc"
        case .irqFree: "irq_free"
        case .unhandled: "unhandled"
        case .firstInterrupt: "first_irq"
        }
    }
}

extension Array {
    public subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
