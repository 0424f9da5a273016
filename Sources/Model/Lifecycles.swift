import IrqscopeDecode

/// Per vector, when each step of its life happened: what `irqscope trace` tabulates at the end.
/// Times are the kernel's (CLOCK_MONOTONIC, ns).
public struct Lifecycles: Sendable {
    public struct Vector: Sendable, Equatable {
        public var device: String
        public var irq: Int
        public var msiIndex: UInt32?
        public var allocated: UInt64?
        public var irte: UInt64?
        public var requested: UInt64?
        public var requestFailed: (errno: Int32, at: UInt64)?
        public var cpuVector: (vector: UInt32, cpu: UInt32, at: UInt64)?
        public var firstInterrupt: UInt64?
        public var freed: UInt64?

        public static func == (a: Vector, b: Vector) -> Bool {
            a.device == b.device && a.irq == b.irq && a.msiIndex == b.msiIndex && a.allocated == b.allocated
                && a.irte == b.irte && a.requested == b.requested && a.freed == b.freed
                && a.requestFailed?.errno == b.requestFailed?.errno && a.cpuVector?.vector == b.cpuVector?.vector
                && a.firstInterrupt == b.firstInterrupt
        }
    }

    /// Every vector that lived during the trace, in the order it was allocated (an irq number
    /// reused after a free starts a new entry).
    public var vectors: [Vector] {
        // A first interrupt goes to the generation of its irq alive at that moment, resolved
        // here: the kernel reports it from the interrupt, which can come before the
        // request_irq event that made it possible (that event is written when request_irq returns).
        var out = generations
        for (irq, times) in firsts {
            for at in times.sorted() {
                guard let i = out.indices.first(where: { k in
                    out[k].irq == irq && out[k].firstInterrupt == nil && out[k].requestFailed == nil
                        && (out[k].allocated ?? out[k].irte ?? 0) <= at && (out[k].freed.map { at <= $0 } ?? true)
                }) else { continue }
                out[i].firstInterrupt = at
            }
        }
        return out
    }
    private var generations: [Vector] = []
    /// Per irq, the kernel's first-interrupt reports (one per activation of its vector, more
    /// only when CPUs race for the first).
    private var firsts: [Int: [UInt64]] = [:]
    private var current: [Int: Int] = [:] // irq -> index into generations

    public init() {}

    public mutating func apply(_ e: Event, device: String?) {
        guard let irq = e.irq.map(Int.init) else { return }
        switch e.kind {
        case .firstInterrupt:
            firsts[irq, default: []].append(e.timeNs)
        case .irqAlloc(_, let index) where e.result >= 0:
            guard let device else { return }
            // the IRTE is allocated inside this allocation, so its event came first
            if let i = current[irq], generations[i].allocated == nil, generations[i].freed == nil {
                generations[i].allocated = e.timeNs
                generations[i].msiIndex = index
                return
            }
            start(Vector(device: device, irq: irq, msiIndex: index, allocated: e.timeNs), at: e.timeNs)
        case .irteAlloc where e.result >= 0:
            if let device, current[irq] == nil {
                start(Vector(device: device, irq: irq), at: e.timeNs)
            }
            update(irq) { if $0.irte == nil { $0.irte = e.timeNs } }
        case .requestIRQ(let name, _):
            let parsed = IRQName(name)
            if case .vfioINTx = parsed { return }
            // kernels before 6.2 do not say the MSI index at allocation; VFIO's name does
            if case .vfioMSI(_, let vector, _) = parsed { update(irq) { $0.msiIndex = $0.msiIndex ?? UInt32(vector) } }
            if e.result == 0 {
                update(irq) { $0.requested = $0.requested ?? e.timeNs }
            } else {
                update(irq) { $0.requestFailed = (Errno.of(result: e.result), e.timeNs) }
            }
        case .vectorAlloc(let vector, _, _) where e.result >= 0:
            update(irq) { if $0.requested == nil || $0.cpuVector == nil { $0.cpuVector = (vector, e.cpu, e.timeNs) } }
        case .vectorConfig(let vector, let cpu, _) where Int(vector) != HostModel.catchAllVector:
            update(irq) { if $0.cpuVector == nil { $0.cpuVector = (vector, cpu, e.timeNs) } }
        case .irqFree:
            update(irq) { $0.freed = e.timeNs }
            current[irq] = nil
        default:
            break
        }
    }

    private mutating func start(_ v: Vector, at: UInt64) {
        current[v.irq] = generations.count
        generations.append(v)
    }

    private mutating func update(_ irq: Int, _ body: (inout Vector) -> Void) {
        guard let i = current[irq] else { return }
        body(&generations[i])
    }

    /// When this host allocates IRTEs: with the MSI descriptor (before request_irq), or at request_irq.
    public enum IRTETiming: String, Sendable { case atAllocation = "at MSI allocation", atRequest = "at request_irq", unknown }

    public var irteTiming: IRTETiming {
        var atAllocation = 0, atRequest = 0
        for v in generations {
            guard let irte = v.irte else { continue }
            if let requested = v.requested, irte >= requested { atRequest += 1 } else { atAllocation += 1 }
        }
        if atAllocation == 0 && atRequest == 0 { return .unknown }
        return atAllocation >= atRequest ? .atAllocation : .atRequest
    }
}
