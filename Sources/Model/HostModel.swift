import IrqscopeDecode

/// Everything irqscope knows about this host, built only from decoded kernel data and the
/// annotations that name processes and drivers (live from /proc and sysfs, or from a recording).
public struct HostModel: Sendable {
    public private(set) var delivery = DeliveryCounters()
    public private(set) var vectors = VectorSpace()
    public private(set) var devices = Devices()
    public private(set) var processes: [UInt32: ProcessIdentity] = [:]
    public private(set) var drivers: [String: String] = [:]
    public private(set) var eventsReceived: UInt64 = 0
    public private(set) var eventsUndecodable: UInt64 = 0
    /// Kernel-side counters, as of the last snapshot.
    public private(set) var kernel = DeliverySnapshot()

    public init() {}

    /// MANAGED_IRQ_SHUTDOWN_VECTOR: where allocated-but-not-requested MSI entries point.
    public static let catchAllVector = 0xef

    public mutating func apply(_ event: Event) {
        eventsReceived += 1
        if case .freeIRQ(_, let total?) = event.kind, let irq = event.irq.map(Int.init) {
            devices.credit(delivered: [irq: delivery.settle(irq: irq, interrupts: total)])
        }
        vectors.apply(event)
        devices.apply(event)
        // a device a VMM sets up is its guest's from the first step, not from its first request_irq
        if event.kind.isProcessCall, processes[event.tgid] != nil, let address = device(of: event) {
            devices.claim(address, by: event.tgid)
        }
    }

    public mutating func noteUndecodable() {
        eventsReceived += 1
        eventsUndecodable += 1
    }

    public mutating func note(process: ProcessIdentity) { processes[process.tgid] = process }

    /// A device as found at start (see `Devices.seed`).
    public mutating func seed(_ present: Annotation.Present) { devices.seed(present) }

    public mutating func note(driver: String?, of address: String) { drivers[address] = driver }

    public mutating func note(line irq: Int, of address: String) { devices.note(line: irq, of: address) }

    public mutating func note(lineWatched: Bool, of address: String) { devices.note(lineWatched: lineWatched, of: address) }

    public mutating func update(_ snapshot: DeliverySnapshot, irqs: [Int: IRQInfo]) {
        let before = kernel.spurious[Self.catchAllVector] ?? 0, now = snapshot.spurious[Self.catchAllVector] ?? 0
        kernel = snapshot
        devices.credit(delivered: delivery.update(kernel: snapshot.irqs, irqs: irqs))
        devices.credit(catchAll: now >= before ? now - before : now)
    }

    /// The guest an event concerns: its device's VMM; for a call a VMM process made, that VMM's
    /// (everything a VMM does is its guest's, its INTx and error-IRQ set-up included); "host" for
    /// a host driver's device; nil when neither says. Interrupt-context events are never named
    /// after the task they interrupted.
    public func guestName(of e: Event) -> String? {
        if let owner = devices.owner(of: e) { return guestName(owner: owner) }
        if e.kind.isProcessCall, let vmm = processes[e.tgid] { return vmm.name }
        if device(of: e) != nil { return "host" }
        return nil
    }

    /// The name of a device's owner (a VMM), its pid when it has not been named.
    public func guestName(owner tgid: UInt32) -> String { processes[tgid]?.name ?? "pid-\(tgid)" }

    /// The PCI device an event concerns: its own, or the one holding its irq. Ask before applying
    /// a free: the free removes what tells whose it was.
    public func device(of e: Event) -> String? { e.device ?? e.irq.flatMap { devices.device(ofIRQ: Int($0)) } }

    /// Processes that own devices now.
    public var owners: Set<UInt32> { Set(devices.devices.values.compactMap(\.owner)) }

    /// Every process the model holds state for: owners, and processes it has named.
    public var trackedProcesses: Set<UInt32> { owners.union(processes.keys) }

    /// Drops what belonged to a process that has exited: no stale series, bounded memory.
    public mutating func processExited(_ tgid: UInt32) {
        devices.retainOwners { $0 != tgid }
        processes[tgid] = nil
    }
}
