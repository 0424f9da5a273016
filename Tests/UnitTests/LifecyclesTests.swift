import IrqscopeDecode
import IrqscopeModel
import Testing

/// Which generation of an irq its first interrupts belong to, when the counter polls run ahead of
/// the ring buffer's lifecycle events (5.10's kretprobes under emulation: a trace showed two of the
/// last five vectors without a first interrupt).
@Suite struct LifecyclesTests {
    let nic = "0000:00:06.0"

    func event(_ kind: Event.Kind, at: UInt64, irq: Int32 = 34) -> Event {
        Event(timeNs: at, result: 0, tgid: 7, pid: 7, irq: irq, comm: "vmm", device: nic, kind: kind)
    }

    @Test func aLookAheadOfItsGenerationsEventGoesToThatGeneration() {
        var l = Lifecycles()
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 100), device: nic)
        l.firstInterrupt(irq: 34, at: 150)
        l.apply(event(.irqFree(count: 1), at: 200), device: nic)
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 210), device: nic)
        l.firstInterrupt(irq: 34, at: 250)
        // a third generation starts at 300 and fires; the poll at 350 sees it before its events
        l.firstInterrupt(irq: 34, at: 350)
        l.apply(event(.irqFree(count: 1), at: 290), device: nic)
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 300), device: nic)
        #expect(l.vectors.map(\.firstInterrupt) == [150, 250, 350])
    }

    @Test func aBusyIrqKeepsALookPerGenerationNotPerPoll() {
        var l = Lifecycles()
        l.apply(event(.irqAlloc(count: 1, msiIndex: 0), at: 100), device: nic)
        for poll in 1...10_000 {
            let at = 100 + UInt64(poll) * 10
            l.apply(event(.vectorConfig(vector: 0x28, cpu: 0, apicDestination: 0), at: at - 5), device: nil)
            l.firstInterrupt(irq: 34, at: at)
        }
        #expect(l.vectors.map(\.firstInterrupt) == [110])
        #expect(l.keptLooks(irq: 34) <= 2, "looks kept: \(l.keptLooks(irq: 34))")
    }
}
