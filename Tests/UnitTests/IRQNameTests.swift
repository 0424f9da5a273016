import Foundation
import IrqscopeDecode
import Testing

@Suite struct IRQNameTests {
    /// Names printed with the kernel's own formats (drivers/vfio/pci/vfio_pci_intrs.c).
    @Test(arguments: [("0000:00:03.0", 0), ("0000:41:00.1", 7), ("10000:e1:1f.7", 2047)])
    func vfioNamesAsTheKernelPrintsThem(_ device: String, _ vector: Int) {
        for msix in [false, true] {
            let name = String(format: "vfio-msi%@[%d](%@)", msix ? "x" : "", vector, device)
            #expect(IRQName(name) == .vfioMSI(device: device, vector: vector, msix: msix), "\(name)")
            #expect(IRQName(name).device == device)
        }
        let intx = String(format: "vfio-intx(%@)", device)
        #expect(IRQName(intx) == .vfioINTx(device: device))
        #expect(IRQName(intx).device == device)
    }

    @Test(arguments: [
        // truncated (a crafted recording: the event's name field holds any VFIO name whole)
        "vfio-msix[3](0000:00:0", "vfio-msix[3", "vfio-intx(0000:00:03.0", "vfio-", "vfio-msi",
        // malformed
        "vfio-msix[](0000:00:03.0)", "vfio-msix[-1](0000:00:03.0)", "vfio-msix[+1](0000:00:03.0)",
        "vfio-msix[1x](0000:00:03.0)", "vfio-msix[3]()", "vfio-intx()", "vfio-intx((a))",
        "vfio-msiy[3](0000:00:03.0)", "vfio-msix3(0000:00:03.0)", "vfio-msix[99999999999999999999](0000:00:03.0)",
        // a form of a kernel to come
        "vfio-err(0000:00:03.0)",
    ])
    func otherVFIONamesAreStillAVMMs(_ name: String) {
        #expect(IRQName(name) == .vfioOther)
        #expect(IRQName(name).isVFIO)
        #expect(IRQName(name).device == nil)
    }

    @Test(arguments: ["nvme0q1", "virtio1-req.0", "uhci_hcd:usb1,ehci_hcd:usb2", "", "VFIO-msix[0](0000:00:03.0)",
                      "vfio", "xvfio-intx(0000:00:03.0)"])
    func driversNames(_ name: String) {
        #expect(IRQName(name) == .driver)
        #expect(!IRQName(name).isVFIO)
    }
}
