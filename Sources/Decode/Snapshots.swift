/// Per-irq interrupt counts read from the kernel's per-CPU arrays, summed over CPUs,
/// counted since the programs were attached.
public struct DeliverySnapshot: Sendable, Equatable {
    public var irqs: [Int: IRQCount]
    /// Per vector: interrupts on a vector without a handler (irq_vectors:spurious_apic_entry).
    public var spurious: [Int: UInt64]
    /// Interrupts on irq numbers beyond the counting array.
    public var untracked: UInt64
    public var eventsDropped: UInt64
    public var kretprobesMissed: UInt64
    /// The lifecycle event ring's size, and the most it held when its reader looked (0: unknown).
    public var ringBytes: UInt64 = 0
    public var ringPeakBytes: UInt64 = 0

    public init(irqs: [Int: IRQCount] = [:], spurious: [Int: UInt64] = [:], untracked: UInt64 = 0,
                eventsDropped: UInt64 = 0, kretprobesMissed: UInt64 = 0) {
        self.irqs = irqs
        self.spurious = spurious
        self.untracked = untracked
        self.eventsDropped = eventsDropped
        self.kretprobesMissed = kretprobesMissed
    }
}

public struct IRQCount: Sendable, Equatable {
    public var interrupts: UInt64
    public var unhandled: UInt64
    public init(interrupts: UInt64, unhandled: UInt64) {
        self.interrupts = interrupts
        self.unhandled = unhandled
    }
}

/// What the kernel says an irq is, read from sysfs at scrape time.
public struct IRQInfo: Sendable, Equatable {
    /// Action names (request_irq devname), comma-joined as in /sys/kernel/irq/N/actions.
    public var name: String
    /// PCI address when the irq is an MSI/MSI-X vector of a PCI device.
    public var device: String?

    public init(name: String, device: String? = nil) {
        self.name = name
        self.device = device
    }
}
