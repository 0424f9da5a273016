import IrqscopeDecode

/// The x86 CPU vector matrix as the irq_matrix tracepoints last reported it. Values appear
/// only once the kernel has said them: a CPU no event has touched yet is absent, not zero.
public struct VectorSpace: Sendable, Equatable {
    public struct Global: Sendable, Equatable {
        public var onlineCPUs: UInt32
        public var available: UInt32
        /// Vectors promised to allocated-but-not-requested MSI entries (reservation mode).
        public var reserved: UInt32
        public var allocated: UInt32
    }

    public private(set) var global: Global?
    public private(set) var cpus: [UInt32: MatrixUpdate.PerCPU] = [:]
    /// Reservations and allocations the vector domain refused, by step and errno.
    public private(set) var failures: [Failure: UInt64] = [:]

    public struct Failure: Hashable, Sendable {
        public var step: String
        public var errno: Int32
    }

    public init() {}

    public mutating func apply(_ event: Event) {
        switch event.kind {
        case .matrix(let update):
            apply(update)
        case .vectorAlloc where event.result < 0:
            failures[Failure(step: "alloc", errno: Errno.of(result: event.result)), default: 0] += 1
        case .vectorReserve where event.result < 0:
            failures[Failure(step: "reserve", errno: Errno.of(result: event.result)), default: 0] += 1
        default:
            break
        }
    }

    public mutating func apply(_ update: MatrixUpdate) {
        global = Global(onlineCPUs: update.onlineMaps, available: update.globalAvailable,
                        reserved: update.globalReserved, allocated: update.totalAllocated)
        if let cpu = update.perCPU { cpus[cpu.cpu] = cpu }
    }
}
