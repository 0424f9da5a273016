import ArgumentParser
import Glibc
import IrqscopeDecode
import IrqscopeKernel

/// What a scrape's read of the per-interrupt counts costs on a host with many CPUs online, which
/// the lab cannot boot (TCG; its 256-CPU guest has 2 online): irqscope's own summing code over an
/// array laid out as the kernel's, in this machine's memory.
struct CountsRead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "counts",
        abstract: "Time summing the per-interrupt counts of CPUS online CPUs, IRQS irqs each, out of SLOTS per CPU, as a scrape does (p50 of 31).")

    @Option(help: "CPUs online, each with a slice of the counts.")
    var cpus = 256
    @Option(help: "Irqs summed per CPU: up to the highest that exists.")
    var irqs = 2073
    @Option(help: "Slots per CPU's slice (a power of two, twice the highest irq at start).")
    var slots = 8192

    func validate() throws {
        if cpus < 1 || irqs < 1 || slots < irqs { throw ValidationError("need 1 <= --irqs <= --slots and --cpus >= 1") }
    }

    func run() throws {
        let array = CountsArray(cpus: cpus, slots: slots)
        for i in stride(from: 0, to: array.bytes.count, by: 8) { array.bytes.storeBytes(of: UInt64(i & 0xff), toByteOffset: i, as: UInt64.self) }
        var times: [Double] = []
        var checksum: UInt64 = 0
        for _ in 0..<31 {
            let start = now()
            let totals = array.sum(irqs: irqs)
            times.append((now() - start) * 1e3)
            checksum &+= totals[irqs - 1].interrupts
        }
        times.sort()
        let mb = Double(cpus * irqs * KernelSession.countSlotBytes) / 1e6
        let two = twoDecimals
        print("counts read: \(cpus) CPUs x \(irqs) irqs of \(slots) slots (\(two(mb)) MB of slots): p50 \(two(times[15])) ms, p90 \(two(times[27])) ms (checksum \(checksum))")
    }
}
