import IrqscopeDecode

/// Everything irqscope knows about this host, built only from decoded kernel data.
public struct HostModel: Sendable {
    public private(set) var delivery = DeliveryCounters()
    public private(set) var vectors = VectorSpace()
    public private(set) var eventsReceived: UInt64 = 0
    public private(set) var eventsUndecodable: UInt64 = 0
    /// Kernel-side counters, as of the last snapshot.
    public private(set) var kernel = DeliverySnapshot()

    public init() {}

    public mutating func apply(_ event: Event) {
        eventsReceived += 1
        switch event.kind {
        case .matrix(let update):
            vectors.apply(update)
        default:
            break
        }
    }

    public mutating func noteUndecodable() {
        eventsReceived += 1
        eventsUndecodable += 1
    }

    public mutating func update(_ snapshot: DeliverySnapshot, irqs: [Int: IRQInfo]) {
        kernel = snapshot
        delivery.update(kernel: snapshot.irqs, irqs: irqs)
    }
}
