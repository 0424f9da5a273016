import IrqscopeDecode

/// Interrupt counters per irq and label set. The kernel counts per irq number; an irq number
/// is reused when a device frees it and another requests it, so kernel totals are turned into
/// deltas and credited to whatever the irq is called now. A renamed irq starts a fresh
/// series at zero, and an irq that is gone leaves no stale series behind.
public struct DeliveryCounters: Sendable {
    public struct Series: Hashable, Sendable {
        public var irq: Int
        public var name: String
        public var device: String?
        public init(irq: Int, name: String, device: String?) {
            self.irq = irq
            self.name = name
            self.device = device
        }
    }

    public struct Totals: Sendable, Equatable {
        public var interrupts: UInt64 = 0
        public var unhandled: UInt64 = 0
        public init(interrupts: UInt64 = 0, unhandled: UInt64 = 0) {
            self.interrupts = interrupts
            self.unhandled = unhandled
        }
    }

    public private(set) var series: [Series: Totals] = [:]
    private var lastKernel: [Int: IRQCount] = [:]
    private var current: [Int: Series] = [:]

    public init() {}

    /// `kernel`: totals since attach per irq. `irqs`: the irqs that exist now and their names
    /// (when that is unknown, every irq the kernel counted is taken as live).
    /// Returns the interrupts counted since the last update, per live irq that counted any.
    @discardableResult
    public mutating func update(kernel: [Int: IRQCount], irqs: [Int: IRQInfo]) -> [Int: UInt64] {
        var deltas: [Int: UInt64] = [:]
        let zero = IRQCount(interrupts: 0, unhandled: 0)
        var next: [Int: Series] = [:]
        next.reserveCapacity(current.count)
        // Runs for every irq of the host at every scrape (2,066 in the lab's scale guest): an irq
        // with no series and nothing to count costs integer lookups only, no label hashing.
        func visit(_ irq: Int, _ info: IRQInfo?) {
            let now = kernel[irq] ?? zero
            let before = lastKernel[irq] ?? zero
            // Per-CPU sums only grow; a smaller value means the counting array was recreated.
            let delta = now.interrupts >= before.interrupts && now.unhandled >= before.unhandled
                ? IRQCount(interrupts: now.interrupts - before.interrupts, unhandled: now.unhandled - before.unhandled)
                : now
            if delta.interrupts > 0 { deltas[irq] = delta.interrupts }
            let name = info?.name ?? "", device = info?.device
            let labels: Series
            if let old = current[irq], old.name == name, old.device == device {
                labels = old
            } else {
                if let old = current[irq] { series[old] = nil }
                // An irq nobody has requested and that never fired is not worth a series.
                if name.isEmpty && delta.interrupts == 0 { return }
                labels = Series(irq: irq, name: name, device: device)
            }
            next[irq] = labels
            guard delta.interrupts > 0 || delta.unhandled > 0 || series[labels] == nil else { return }
            // A counter wraps like the kernel's u64 (a reset to Prometheus) rather than trap: only a
            // crafted recording can push it past 2^64.
            series[labels, default: Totals()].interrupts &+= delta.interrupts
            series[labels, default: Totals()].unhandled &+= delta.unhandled
        }
        if irqs.isEmpty {
            for irq in kernel.keys { visit(irq, nil) }
        } else {
            for (irq, info) in irqs { visit(irq, info) }
        }
        for (irq, labels) in current where next[irq] == nil { series[labels] = nil }
        current = next
        lastKernel = kernel
        return deltas
    }

    /// An irq freed with `interrupts` handled since attach (the kernel's sum as it was freed):
    /// takes in what it handled since the last update, which the next update, no longer finding
    /// the irq, would lose. Returns that delta.
    public mutating func settle(irq: Int, interrupts: UInt64) -> UInt64 {
        let before = lastKernel[irq] ?? IRQCount(interrupts: 0, unhandled: 0)
        guard interrupts > before.interrupts else { return 0 }
        let delta = interrupts - before.interrupts
        lastKernel[irq] = IRQCount(interrupts: interrupts, unhandled: before.unhandled)
        if let labels = current[irq] { series[labels]?.interrupts &+= delta }
        return delta
    }
}
