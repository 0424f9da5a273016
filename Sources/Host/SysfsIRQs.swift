import IrqscopeDecode

/// Names and devices of the irqs that exist now, from sysfs: /sys/kernel/irq/N/actions
/// and, for MSI vectors of PCI devices, /sys/bus/pci/devices/BDF/msi_irqs/N.
public enum SysfsIRQs {
    public static func read(root: String = "/") -> [Int: IRQInfo] {
        let base = root.hasSuffix("/") ? root : root + "/"
        var devices: [Int: String] = [:]
        for bdf in listDirectory(base + "sys/bus/pci/devices") {
            for entry in listDirectory(base + "sys/bus/pci/devices/\(bdf)/msi_irqs") {
                if let irq = Int(entry) { devices[irq] = bdf }
            }
        }
        var out: [Int: IRQInfo] = [:]
        for entry in listDirectory(base + "sys/kernel/irq") {
            guard let irq = Int(entry) else { continue }
            let actions = readFile(base + "sys/kernel/irq/\(entry)/actions").map(trimNewline) ?? ""
            out[irq] = IRQInfo(name: actions, device: devices[irq])
        }
        return out
    }

    /// The last read, kept while nothing says it changed. Reading every irq's actions and every
    /// device's msi_irqs on each scrape was a fifth of its CPU; the list of /sys/kernel/irq is one
    /// directory read. An irq allocated or freed (an MSI vector with it) changes that list; a
    /// handler requested or freed on an irq that stays is a lifecycle event (`generation`).
    public struct Cache: Sendable {
        private var live: [String]?
        private var generation: UInt64 = 0
        private var irqs: [Int: IRQInfo] = [:]
        private let root: String

        public init(root: String = "/") { self.root = root.hasSuffix("/") ? root : root + "/" }

        /// `generation`: a count the caller raises on each lifecycle event, taken before calling.
        public mutating func read(generation: UInt64) -> [Int: IRQInfo] {
            let now = listDirectory(root + "sys/kernel/irq")
            if now != live || generation != self.generation {
                irqs = SysfsIRQs.read(root: root)
                live = now
                self.generation = generation
            }
            return irqs
        }
    }
}
