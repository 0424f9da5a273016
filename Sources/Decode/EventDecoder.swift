import IrqscopeABI

public enum DecodeError: Error, Equatable, CustomStringConvertible {
    case truncated(got: Int, want: Int)
    case unknownType(UInt32)
    case unknownSource(UInt32)
    case unknownMatrixOp(UInt32)
    case tooManyIRQs(event: String, count: UInt32)

    public var description: String {
        switch self {
        case .truncated(let got, let want): "event record of \(got) bytes, expected \(want)"
        case .unknownType(let t): "unknown event type \(t)"
        case .unknownSource(let s): "unknown event source \(s)"
        case .unknownMatrixOp(let op): "unknown irq_matrix op \(op)"
        case .tooManyIRQs(let event, let count):
            "\(event) of \(count) irqs: one allocation covers at most \(Event.maxIRQsPerEvent) (an MSI-X table's size)"
        }
    }
}

extension Event {
    /// Size of one ring-buffer record: `struct irqscope_event`.
    public static let recordSize = MemoryLayout<irqscope_event>.size

    /// An irq range event covers one MSI descriptor's irqs: at most an MSI-X table, 2048. More is
    /// not something the kernel reports, and the model walks every irq of a range.
    public static let maxIRQsPerEvent: UInt32 = 2048

    /// Decodes one ring-buffer record. The layout comes from `irqscope_abi.h`, never restated here.
    public init(record: UnsafeRawBufferPointer) throws(DecodeError) {
        guard record.count >= Self.recordSize else { throw .truncated(got: record.count, want: Self.recordSize) }
        let raw = record.loadUnaligned(as: irqscope_event.self)
        guard let source = EventSource(rawValue: raw.source) else { throw .unknownSource(raw.source) }
        let kind = try Self.kind(of: raw)
        self.init(
            timeNs: raw.time_ns, result: raw.result, source: source,
            tgid: raw.tgid, pid: raw.pid, cpu: raw.cpu, irq: raw.irq < 0 ? nil : raw.irq,
            comm: cString(raw.comm), device: nonEmpty(cString(raw.device)), kind: kind)
    }

    private static func kind(of raw: irqscope_event) throws(DecodeError) -> Kind {
        let u = raw.u
        let noIndex = UInt32.max
        switch raw.type {
        case IRQSCOPE_EV_MSIX_ENABLE.rawValue:
            return .msixEnable(minVectors: u.msix_range.min_vecs, maxVectors: u.msix_range.max_vecs,
                               flags: u.msix_range.flags)
        case IRQSCOPE_EV_MSIX_ADD.rawValue:
            let allocated = u.msix_add.index_allocated
            return .msixAdd(indexRequested: u.msix_add.index_requested, indexAllocated: allocated < 0 ? nil : allocated)
        case IRQSCOPE_EV_MSIX_DISABLE.rawValue:
            return .msixDisable
        case IRQSCOPE_EV_MSI_ALLOC.rawValue, IRQSCOPE_EV_MSI_FREE.rawValue:
            let m = u.msi_domain
            let range = MSIRange(first: m.first == noIndex ? nil : m.first, last: m.last == noIndex ? nil : m.last,
                                 count: m.count)
            return raw.type == IRQSCOPE_EV_MSI_ALLOC.rawValue ? .msiAlloc(range) : .msiFree(range)
        case IRQSCOPE_EV_IRTE_ALLOC.rawValue:
            try checkRange("irte_alloc", u.irte.nr_irqs)
            return .irteAlloc(count: u.irte.nr_irqs, msiIndex: u.irte.hwirq_index == noIndex ? nil : u.irte.hwirq_index)
        case IRQSCOPE_EV_IRTE_FREE.rawValue:
            try checkRange("irte_free", u.irte.nr_irqs)
            return .irteFree(count: u.irte.nr_irqs)
        case IRQSCOPE_EV_IRTE_ACTIVATE.rawValue:
            return .irteActivate(reserve: u.irte.reserve != 0)
        case IRQSCOPE_EV_IRTE_DEACTIVATE.rawValue:
            return .irteDeactivate
        case IRQSCOPE_EV_IRTE_POSTED.rawValue:
            return .irtePosted(u.irte.posted != 0)
        case IRQSCOPE_EV_PI_UPDATE.rawValue:
            let p = u.pi_update
            return .piUpdate(vcpu: p.vcpu_id == noIndex ? nil : p.vcpu_id, gsi: p.gsi, guestVector: p.gvec, set: p.set != 0)
        case IRQSCOPE_EV_REQUEST_IRQ.rawValue:
            return .requestIRQ(name: cString(u.irq_request.name), flags: u.irq_request.flags)
        case IRQSCOPE_EV_FREE_IRQ.rawValue:
            let f = u.irq_request.flags
            return .freeIRQ(name: cString(u.irq_request.name),
                            interrupts: f & IRQSCOPE_FREE_IRQ_COUNTED != 0 ? f & ~IRQSCOPE_FREE_IRQ_COUNTED : nil)
        case IRQSCOPE_EV_VFIO_SET_IRQS.rawValue:
            let v = u.vfio
            return .vfioSetIRQs(VFIOSetIRQs(flags: v.flags, index: v.index, start: v.start, count: v.count))
        case IRQSCOPE_EV_VECTOR_RESERVE.rawValue:
            return .vectorReserve(managed: u.vector.is_managed != 0)
        case IRQSCOPE_EV_VECTOR_ALLOC.rawValue:
            return .vectorAlloc(vector: u.vector.vector, fromReservation: u.vector.reserved != 0,
                                managed: u.vector.is_managed != 0)
        case IRQSCOPE_EV_VECTOR_ACTIVATE.rawValue, IRQSCOPE_EV_VECTOR_DEACTIVATE.rawValue:
            let a = VectorActivation(managed: u.vector.is_managed != 0, canReserve: u.vector.can_reserve != 0,
                                     reserve: u.vector.reserve != 0)
            return raw.type == IRQSCOPE_EV_VECTOR_ACTIVATE.rawValue ? .vectorActivate(a) : .vectorDeactivate(a)
        case IRQSCOPE_EV_VECTOR_TEARDOWN.rawValue:
            return .vectorTeardown(managed: u.vector.is_managed != 0, hadReservation: u.vector.has_reserved != 0)
        case IRQSCOPE_EV_VECTOR_CONFIG.rawValue:
            return .vectorConfig(vector: u.vector.vector, cpu: u.vector.cpu, apicDestination: u.vector.apicdest)
        case IRQSCOPE_EV_MATRIX.rawValue:
            let m = u.matrix
            guard let op = MatrixOp(rawValue: m.op) else { throw .unknownMatrixOp(m.op) }
            let perCPU = m.has_cpu != 0
                ? MatrixUpdate.PerCPU(cpu: m.cpu, online: m.online != 0, available: m.available,
                                      allocated: m.allocated, managed: m.managed)
                : nil
            return .matrix(MatrixUpdate(op: op, bit: m.bit < 0 ? nil : m.bit, perCPU: perCPU,
                                        onlineMaps: m.online_maps, globalAvailable: m.global_available,
                                        globalReserved: m.global_reserved, totalAllocated: m.total_allocated))
        case IRQSCOPE_EV_IRQ_ALLOC.rawValue:
            let r = u.irq_range
            try checkRange("irq_alloc", r.nr_irqs)
            return .irqAlloc(count: r.nr_irqs, msiIndex: r.msi_index == noIndex ? nil : r.msi_index)
        case IRQSCOPE_EV_IRQ_FREE.rawValue:
            try checkRange("irq_free", u.irq_range.nr_irqs)
            return .irqFree(count: u.irq_range.nr_irqs)
        case IRQSCOPE_EV_UNHANDLED.rawValue:
            return .unhandled(count: u.unhandled.count)
        case IRQSCOPE_EV_FIRST_IRQ.rawValue:
            return .firstInterrupt
        default:
            throw .unknownType(raw.type)
        }
    }
}

private func checkRange(_ event: String, _ count: UInt32) throws(DecodeError) {
    if count > Event.maxIRQsPerEvent { throw .tooManyIRQs(event: event, count: count) }
}

/// A NUL-terminated C char array (imported as a tuple) as a String.
func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { bytes in
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

func nonEmpty(_ s: String) -> String? { s.isEmpty ? nil : s }
