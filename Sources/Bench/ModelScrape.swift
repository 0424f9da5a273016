import ArgumentParser
import Glibc
import IrqscopeDecode
import IrqscopeHost
import IrqscopeKernel
import IrqscopeModel
import IrqscopeRender

/// The rest of a scrape at the scale of a recorded host, natively: the lab's scale boot (2,066
/// irqs, an nvme's 2,048 vectors found at start) runs under TCG, where everything takes some
/// 30 times longer. Each round sums the counts of CPUS online CPUs up to the recording's highest
/// irq (as `counts` does), applies them to the recording's model as a scrape's look, and renders
/// the OpenMetrics exposition. Not in it: the kernel's side (listing /sys/kernel/irq, mapping
/// the counts) and gzip.
struct ModelScrape: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Time a scrape's counts read, look and rendering on a recording's model with CPUS online CPUs (p50 of 31), e.g. the lab's 2,048-vector boot.")

    @Argument(help: "A recording of 'serve --record' (uncompressed), e.g. Tests/Fixtures/lab/6.1/scale/scale.rec.gz unpacked.")
    var recording: String
    @Option(help: "CPUs online, each with a slice of the counts.")
    var cpus = 256

    func run() throws {
        var reader: RecordingReader
        do { reader = try RecordingReader(path: recording) } catch { throw BenchError("\(recording): \(error)") }
        defer { reader.close() }
        var pipeline = Pipeline(lifecycles: false, keepExited: false)
        var last: Annotation.Delivery?
        while let entry = try nextEntry(&reader) {
            if case .annotation(.delivery(let d)) = entry { last = d }
            _ = pipeline.play(entry)
        }
        guard let last, let highest = last.live.max() else { throw BenchError("\(recording): no scrape's look in it") }
        let irqs = highest + 1
        let slots = Int(KernelSession.irqSlots(highest: highest))
        // named as sysfs names them: by their handlers, none for vectors nothing requested
        let live = Dictionary(last.live.map { ($0, IRQInfo(name: last.snapshot.irqs[$0] == nil ? "" : "handler\($0)")) },
                              uniquingKeysWith: { a, _ in a })
        // the recorded irqs count on CPU 0
        let array = CountsArray(cpus: cpus, slots: slots)
        let build = HostMetrics.Build(version: "bench", libbpf: KernelSession.libbpfVersion, kernel: "recorded")
        var counts: [Double] = [], totals: [Double] = []
        var bytes = 0
        for round in 0..<31 {
            for (irq, c) in last.snapshot.irqs where irq < slots {
                array.set(cpu: 0, irq: irq, interrupts: c.interrupts + UInt64(round))
            }
            let start = now()
            let sums = array.sum(irqs: irqs)
            var snapshot = last.snapshot
            snapshot.irqs = [:]
            for (irq, total) in sums.enumerated() where total.interrupts > 0 { snapshot.irqs[irq] = total }
            let summed = now()
            _ = pipeline.look(snapshot, irqs: live, at: nil)
            let body = renderBytes(HostMetrics.families(pipeline.model, report: ProbeReport(families: [], kernel: []), build: build,
                                                       scrapeSeconds: 0), format: .openMetrics)
            let end = now()
            bytes = body.count
            counts.append((summed - start) * 1e3)
            totals.append((end - start) * 1e3)
        }
        counts.sort()
        totals.sort()
        let two = twoDecimals
        print("scale: \(last.live.count) irqs (highest \(highest)), \(pipeline.model.devices.devices.count) devices, \(cpus) CPUs online: "
              + "counts read p50 \(two(counts[15])) ms; with the look and rendering (\(bytes) bytes) p50 \(two(totals[15])) ms, p90 \(two(totals[27])) ms")
    }

    private func nextEntry(_ reader: inout RecordingReader) throws -> Recording.Entry? {
        do { return try reader.next() } catch { throw BenchError("\(recording): \(error)") }
    }
}
