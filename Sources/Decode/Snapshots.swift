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

extension DeliverySnapshot {
    /// The snapshot as recording annotation fields, and back: replay sees what a scrape saw.
    public func annotation(live: some Sequence<Int>) -> [(String, String)] {
        [("type", "delivery"),
         ("irqs", irqs.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.interrupts):\($0.value.unhandled)" }.joined(separator: ",")),
         ("spurious", spurious.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")),
         ("live", live.sorted().map(String.init).joined(separator: ",")),
         ("dropped", String(eventsDropped)), ("untracked", String(untracked)), ("kretprobe_misses", String(kretprobesMissed))]
    }

    public init(annotation a: [String: String]) {
        self.init()
        // irq numbers are the kernel's int, vectors a byte: anything else is not a snapshot's
        for item in (a["irqs"] ?? "").split(separator: ",") {
            let f = item.split(separator: ":")
            if f.count == 3, let irq = Int32(f[0]), irq >= 0, let n = UInt64(f[1]), let u = UInt64(f[2]) {
                irqs[Int(irq)] = IRQCount(interrupts: n, unhandled: u)
            }
        }
        for item in (a["spurious"] ?? "").split(separator: ",") {
            let f = item.split(separator: ":")
            if f.count == 2, let vector = UInt8(f[0]), let n = UInt64(f[1]) { spurious[Int(vector)] = n }
        }
        eventsDropped = a["dropped"].flatMap(UInt64.init) ?? 0
        untracked = a["untracked"].flatMap(UInt64.init) ?? 0
        kretprobesMissed = a["kretprobe_misses"].flatMap(UInt64.init) ?? 0
    }
}
