import Foundation
import IrqscopeDecode
import IrqscopeHost
import Testing
import TestSupport

@Suite struct SysfsIRQsTests {
    @Test func namesAndDevicesFromAFabricatedTree() throws {
        let tree = FakeTree("sysfs"), root = tree.root
        let write = tree.write
        try write("sys/kernel/irq/36/actions", "virtio1-req.0\n")
        try write("sys/kernel/irq/36/chip_name", "PCI-MSIX-0000:00:02.0\n")
        try write("sys/kernel/irq/11/actions", "uhci_hcd:usb1,ehci_hcd:usb2\n")
        try write("sys/kernel/irq/12/actions", "\n")
        try write("sys/bus/pci/devices/0000:00:02.0/msi_irqs/35", "msix\n")
        try write("sys/bus/pci/devices/0000:00:02.0/msi_irqs/36", "msix\n")
        let irqs = SysfsIRQs.read(root: root)
        #expect(irqs[36] == IRQInfo(name: "virtio1-req.0", device: "0000:00:02.0"))
        #expect(irqs[11]?.name == "uhci_hcd:usb1,ehci_hcd:usb2")
        #expect(irqs[11]?.device == nil)
        #expect(irqs[12]?.name == "")
        #expect(irqs[35] == nil) // an MSI vector without an irq directory does not exist
    }

    /// Read again when an irq comes or goes, or a lifecycle event says so; kept otherwise.
    @Test func theCacheRereadsOnANewIRQOrAnEvent() throws {
        let tree = FakeTree("sysfs"), root = tree.root
        let write = tree.write
        try write("sys/kernel/irq/36/actions", "virtio1-req.0\n")
        var cache = SysfsIRQs.Cache(root: root)
        #expect(cache.read(generation: 0)[36]?.name == "virtio1-req.0")
        try write("sys/kernel/irq/36/actions", "vfio-msix[0](0000:01:00.0)\n")
        #expect(cache.read(generation: 0)[36]?.name == "virtio1-req.0", "nothing said irq 36 changed")
        #expect(cache.read(generation: 1)[36]?.name == "vfio-msix[0](0000:01:00.0)")
        try write("sys/kernel/irq/37/actions", "nvme0q1\n")
        try write("sys/bus/pci/devices/0000:00:04.0/msi_irqs/37", "msix\n")
        #expect(cache.read(generation: 1)[37] == IRQInfo(name: "nvme0q1", device: "0000:00:04.0"))
        try FileManager.default.removeItem(atPath: root + "/sys/kernel/irq/36")
        #expect(cache.read(generation: 1)[36] == nil)
    }
}
