import IrqscopeDecode

/// Applies a recording's entries to a model, as `irqscope replay` does.
public struct RecordingPlayer: Sendable {
    public private(set) var model = HostModel()
    public private(set) var lifecycles = Lifecycles()
    /// Keep exited VMMs' devices: a summary wants them; metrics drop them as a live exporter does.
    public var keepExited: Bool
    private var counted: [Int: UInt64] = [:]

    public init(keepExited: Bool) { self.keepExited = keepExited }

    /// The event, named as it was when it happened (before a free removed what says whose it was).
    public struct Step: Sendable {
        public var event: Event
        public var guest: String?
        public var device: String?
    }

    public mutating func play(_ entry: Recording.Entry) -> Step? {
        switch entry {
        case .annotation(let a):
            if a["type"] == "exit" && keepExited { return nil }
            model.apply(annotation: a)
            if a["type"] == "delivery" {
                // as trace saw it live: the irqs whose count went up since the previous look
                let irqs = DeliverySnapshot(annotation: a).irqs
                if let at = a["at"].flatMap(UInt64.init) {
                    for (irq, c) in irqs where c.interrupts > (counted[irq] ?? 0) { lifecycles.firstInterrupt(irq: irq, at: at) }
                }
                counted = irqs.mapValues(\.interrupts)
            }
            return nil
        case .event(let e):
            let device = model.device(of: e)
            let named = model.guestName(of: e)
            model.apply(e)
            lifecycles.apply(e, device: device)
            return Step(event: e, guest: named ?? model.guestName(of: e), device: device)
        }
    }
}
