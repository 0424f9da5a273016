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
}
