import IrqscopeDecode
import IrqscopeModel
import Testing

/// Which generation of an irq a first-interrupt report belongs to: the kernel writes it from the
/// interrupt, which can come before the event of the request_irq that made it possible (written
/// when request_irq returns), and before the events of a later generation under load.
@Suite struct LifecyclesTests {
    let nic = "0000:00:06.0"

    func event(_ kind: Event.Kind, at: UInt64, irq: Int32 = 34, result: Int64 = 0) -> Event {
        Event(timeNs: at, result: result, tgid: 7, pid: 7, irq: irq, comm: "vmm", device: nic, kind: kind)
    }

    func first(at: UInt64, irq: Int32 = 34) -> Event { event(.firstInterrupt, at: at, irq: irq) }

    @Test func aFirstInterruptGoesToTheGenerationAliveThen() {
        var l = Lifecycles()
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 100), device: nic)
        l.apply(first(at: 150), device: nil) // ahead of its request_irq's event
        l.apply(event(.requestIRQ(name: "vfio-msix[0](\(nic))", flags: 0), at: 160), device: nic)
        l.apply(event(.irqFree(count: 1), at: 200), device: nic)
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 210), device: nic)
        l.apply(event(.requestIRQ(name: "vfio-msix[0](\(nic))", flags: 0), at: 220), device: nic)
        l.apply(first(at: 250), device: nil)
        // a racing CPU's later report of the same activation does not move it
        l.apply(first(at: 260), device: nil)
        // a third generation's first interrupt, reported before that generation's events
        l.apply(first(at: 350), device: nil)
        l.apply(event(.irqFree(count: 1), at: 290), device: nic)
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 300), device: nic)
        #expect(l.vectors.map(\.firstInterrupt) == [150, 250, 350])
    }

    @Test func aVectorWhoseRequestFailedHasNoFirstInterrupt() {
        var l = Lifecycles()
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 100), device: nic)
        l.apply(event(.requestIRQ(name: "vfio-msix[0](\(nic))", flags: 0), at: 120, result: -28), device: nic)
        // the line's other action handled it: not this vector's
        l.apply(first(at: 150), device: nil)
        #expect(l.vectors.map(\.firstInterrupt) == [nil])
        #expect(l.vectors.first?.requestFailed?.errno == 28)
    }

    @Test func anIrqOutsideEveryGenerationIsIgnored() {
        var l = Lifecycles()
        l.apply(first(at: 50, irq: 9), device: nil)
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 100), device: nic)
        #expect(l.vectors.map(\.firstInterrupt) == [nil])
    }

    /// Before 6.2 the allocation does not say the MSI index: VFIO's irq name does.
    @Test func theIndexComesFromVFIOsNameWhenTheKernelDidNotSayIt() {
        var l = Lifecycles()
        l.apply(event(.irqAlloc(count: 1, msiIndex: nil), at: 100, irq: 35), device: nic)
        l.apply(event(.requestIRQ(name: "vfio-msix[3](\(nic))", flags: 0), at: 120, irq: 35), device: nic)
        l.apply(event(.irqAlloc(count: 1, msiIndex: 1), at: 130, irq: 36), device: nic)
        l.apply(event(.requestIRQ(name: "vfio-msix[4](\(nic))", flags: 0), at: 140, irq: 36), device: nic)
        #expect(l.vectors.map(\.msiIndex) == [3, 1], "the kernel's own index is kept")
    }
}
