import IrqscopeDecode
import IrqscopeKernel

/// The per-interrupt counts array as the kernel lays it out, a slice of `slots` per CPU, in this
/// machine's memory: what the benchmarks sum, with irqscope's own code, as a scrape does.
final class CountsArray {
    let cpus: Int, slots: Int
    private let slice: Int
    let bytes: UnsafeMutableRawBufferPointer

    /// Every page written, as the kernel's preallocated array is.
    init(cpus: Int, slots: Int) {
        self.cpus = cpus
        self.slots = slots
        slice = slots * KernelSession.countSlotBytes
        bytes = .allocate(byteCount: cpus * slice, alignment: 4096)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { bytes.deallocate() }

    func set(cpu: Int, irq: Int, interrupts: UInt64) {
        bytes.storeBytes(of: interrupts, toByteOffset: cpu * slice + irq * KernelSession.countSlotBytes, as: UInt64.self)
    }

    /// Every CPU's first `irqs` slots summed, as KernelSession.readDelivery sums the mapped slices.
    func sum(irqs: Int) -> [IRQCount] {
        var totals = [IRQCount](repeating: IRQCount(interrupts: 0, unhandled: 0), count: slots)
        for cpu in 0..<cpus {
            _ = KernelSession.add(UnsafeRawBufferPointer(rebasing: bytes[(cpu * slice)..<((cpu + 1) * slice)]), irqs: irqs, to: &totals)
        }
        return totals
    }
}

/// Milliseconds to two decimals.
func twoDecimals(_ v: Double) -> String { String(Double(Int(v * 100 + 0.5)) / 100) }
