import ArgumentParser
import Glibc
import IrqscopeHost

/// Serving, side by side with node_exporter's interrupts collector on the same host and in the
/// same run: every figure as irqscope, node_exporter and their ratio. The machines this runs on
/// are shared and noisy, so only ratios from one run mean anything, and scrapes interleave.
struct ServeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Measure irqscope serve against prometheus-node-exporter --collector.interrupts: scrape time, bytes, CPU, syscalls, idle wake-ups, RSS, start-up and exit.")

    @Option(help: "The irqscope binary (default: the one beside this benchmark, the release build).")
    var irqscope: String?

    @Option(help: "The node_exporter binary (Debian's prometheus-node-exporter).")
    var nodeExporter = "/usr/bin/prometheus-node-exporter"

    @Option(help: "Scrapes of each exporter per repetition, interleaved.")
    var scrapes = 500

    @Option(help: "Repetitions of the interleaved scrapes; the figures are their medians.")
    var repetitions = 3

    @Option(help: "Starts and SIGTERMs of each exporter for the start-up and exit figures.")
    var starts = 5

    @Option(help: "Seconds both exporters sit unscraped for the idle wake-up figure.")
    var idleSeconds = 10

    @Flag(inversion: .prefixedNo, help: "Count syscalls per scrape with strace -c -f (if installed).")
    var syscalls = true

    @Flag(help: "Raise disk interrupts during the scrapes (O_DIRECT reads of --load-file).")
    var diskLoad = false

    @Option(help: "File read with O_DIRECT for --disk-load (created if missing).")
    var loadFile = "/var/tmp/irqscope-bench.img"

    func run() throws {
        let ours = Exporter(name: "irqscope", interruptSeries: "irqscope_interrupts_total") { [binary = irqscopeBinary()] port in
            [binary, "serve", "--web.listen-address=127.0.0.1:\(port)"]
        }
        let theirs = Exporter(name: "node_exporter", interruptSeries: "node_interrupts_total") { [nodeExporter] port in
            [nodeExporter, "--collector.disable-defaults", "--collector.interrupts", "--web.listen-address=127.0.0.1:\(port)"]
        }
        let both = [ours, theirs]
        let logs = both.map { "/tmp/irqscope-bench-\($0.name).log" }
        for log in logs { unlink(log) }
        defer { for e in both { e.stop() } }
        print("irqscope:      \(irqscopeBinary())\nnode_exporter: \(nodeExporter)\nlogs:          \(logs.joined(separator: " "))\n")

        // Start-up and exit, alternating which goes first.
        var startUp: [[Double]] = [[], []], exit: [[Double]] = [[], []]
        for round in 0..<starts {
            for i in round % 2 == 0 ? [0, 1] : [1, 0] {
                startUp[i].append(try both[i].start(log: logs[i]))
                usleep(200_000)
                exit[i].append(both[i].stop())
            }
        }

        for (i, e) in both.enumerated() { try e.start(log: logs[i]) }
        for _ in 0..<20 { for e in both { _ = try e.scrape() } }
        let plain = try both.map { try $0.scrape(gzip: false) }
        let series = zip(both, plain).map { e, r in count(String(decoding: r.body, as: UTF8.self), e.interruptSeries) }

        // Idle: no scrapes, kept-alive connections open as Prometheus keeps them; after 6 s, when
        // libdispatch's workers from start-up have timed out and exited (5 s), as they do once
        sleep(6)
        let switches0 = both.map { $0.contextSwitches() }, idleCPU0 = both.map { $0.cpuSeconds() }
        sleep(UInt32(idleSeconds))
        // a thread that started or ended in the window woke at least once
        let idleSwitches = both.indices.map { i in
            let after = both[i].contextSwitches(), before = switches0[i]
            let woke = Set(after.keys).union(before.keys).reduce(0) { n, tid in
                guard let a = after[tid], let b = before[tid] else { return n + 1 }
                return n + a - b
            }
            return Double(woke) / Double(idleSeconds)
        }
        let idleCPU = both.indices.map { (both[$0].cpuSeconds() - idleCPU0[$0]) / Double(idleSeconds) }

        let load = diskLoad ? try LoadGenerator(file: loadFile) : nil
        defer { load?.stop() }
        var p50: [[Double]] = [[], []], p90: [[Double]] = [[], []], cpu: [[Double]] = [[], []], wire: [[Double]] = [[], []]
        for rep in 0..<repetitions {
            var times: [[Double]] = [[], []]
            var bytes: [[Double]] = [[], []]
            let cpu0 = both.map { $0.cpuSeconds() }
            for n in 0..<scrapes {
                for i in (rep + n) % 2 == 0 ? [0, 1] : [1, 0] {
                    let t0 = now()
                    let r = try both[i].scrape()
                    times[i].append(now() - t0)
                    bytes[i].append(Double(r.wireBytes))
                }
            }
            for i in 0..<2 {
                cpu[i].append((both[i].cpuSeconds() - cpu0[i]) / Double(scrapes))
                p50[i].append(quantile(times[i], 0.5))
                p90[i].append(quantile(times[i], 0.9))
                wire[i].append(quantile(bytes[i], 0.5))
            }
            print("repetition \(rep + 1): p50 \(ms(p50[0].last!)) / \(ms(p50[1].last!)) ms, CPU \(ms(cpu[0].last!)) / \(ms(cpu[1].last!)) ms per scrape")
        }
        let rss = both.map { Double($0.rss()) }
        let threads = both.map { Double($0.threads()) }
        let calls: [Double]? = syscalls && access("/usr/bin/strace", X_OK) == 0 ? try both.map { try syscallsPerScrape($0) } : nil

        var rows: [Row] = [
            Row("scrape p50 (ms)", p50.map(median), scale: 1e3, goal: 0.5),
            Row("scrape p90 (ms)", p90.map(median), scale: 1e3),
            Row("bytes on the wire per scrape", wire.map(median), digits: 0),
            Row("CPU per scrape (ms, utime+stime)", cpu.map(median), scale: 1e3, goal: 0.5),
        ]
        if let calls { rows.append(Row("syscalls per scrape (strace -c -f)", calls, digits: 0)) }
        rows += [
            Row("idle wake-ups (context switches/s, all threads, \(idleSeconds) s from 6 s after the last scrape)", idleSwitches, goalAbsolute: 0),
            Row("idle CPU (%)", idleCPU, scale: 100, digits: 3),
            Row("RSS after \(repetitions * scrapes + 21) scrapes (MB)", rss, scale: 1e-6, goal: 1),
            Row("threads", threads, digits: 0),
            Row("start-up, exec to first 200 (ms, median of \(starts))", startUp.map(median), scale: 1e3, goalAbsolute: 50),
            Row("exit after SIGTERM, signal to reaped (ms, median of \(starts))", exit.map(median), scale: 1e3, goalAbsolute: 50),
            Row("interrupt series (\(ours.interruptSeries) / \(theirs.interruptSeries))", series.map(Double.init), digits: 0),
            Row("series in all", plain.map { Double(count(String(decoding: $0.body, as: UTF8.self), nil)) }, digits: 0),
        ]
        print("\nirqscope against node_exporter --collector.interrupts, same run\(diskLoad ? ", under disk interrupt load" : ", idle host"); \(repetitions) x \(scrapes) interleaved keep-alive scrapes with Prometheus's Accept and Accept-Encoding: gzip\n")
        print("| figure | irqscope | node_exporter | ratio | goal |")
        print("|---|---|---|---|---|")
        for row in rows { print(row.markdown) }
        // a figure's own ratios per repetition say how noisy the run was
        print("\nscrape p50 ratio per repetition: \(zip(p50[0], p50[1]).map { fmt($0 / $1, 2) }.joined(separator: ", "))")
        print("CPU per scrape ratio per repetition: \(zip(cpu[0], cpu[1]).map { fmt($0 / $1, 2) }.joined(separator: ", "))")
        let missed = rows.filter { $0.met == false }
        print(missed.isEmpty ? "every goal met" : "goals NOT met: \(missed.map(\.figure).joined(separator: "; "))")
        if !missed.isEmpty { throw ExitCode(1) }
    }

    private func irqscopeBinary() -> String {
        if let irqscope { return irqscope }
        var path = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &path, path.count - 1)
        let me = n > 0 ? String(decoding: path[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return String(me[..<(me.lastIndex(of: "/") ?? me.startIndex)]) + "/irqscope"
    }

    /// strace -c -f attached to every thread over 100 scrapes (strace slows them; only the count is used).
    private func syscallsPerScrape(_ e: Exporter) throws -> Double {
        let out = "/tmp/irqscope-bench-strace-\(e.name).txt"
        unlink(out)
        let tracer = try spawn(["/usr/bin/strace", "-c", "-f", "-q", "-o", out, "-p", String(e.pid)], output: "/dev/null")
        usleep(500_000)
        let n = 100
        for _ in 0..<n { _ = try e.scrape() }
        usleep(200_000)
        kill(tracer, SIGINT)
        var status: Int32 = 0
        waitpid(tracer, &status, 0)
        // "100.00    0.001234           2       612        12 total"
        let total = (readFile(out) ?? "").split(separator: "\n").last { $0.hasSuffix(" total") }
        let fields = total?.split(separator: " ") ?? []
        guard fields.count >= 4, let calls = Double(fields[3]) else { throw BenchError("strace gave no total for \(e.name); see \(out)") }
        return calls / Double(n)
    }
}

/// Samples of `name` (every sample when nil) in an exposition.
func count(_ body: String, _ name: String?) -> Int {
    body.split(separator: "\n").filter { line in
        guard !line.hasPrefix("#") else { return false }
        guard let name else { return true }
        return line.hasPrefix(name + "{") || line.hasPrefix(name + " ")
    }.count
}

func quantile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
}

func median(_ values: [Double]) -> Double { quantile(values, 0.5) }

func ms(_ seconds: Double) -> String { fmt(seconds * 1e3, 3) }

struct Row {
    var figure: String
    var values: [Double]
    var scale: Double
    var digits: Int
    /// At most this ratio to node_exporter.
    var goal: Double?
    /// At most this much of irqscope's own figure (scaled).
    var goalAbsolute: Double?

    init(_ figure: String, _ values: [Double], scale: Double = 1, digits: Int = 3, goal: Double? = nil, goalAbsolute: Double? = nil) {
        self.figure = figure
        self.values = values
        self.scale = scale
        self.digits = digits
        self.goal = goal
        self.goalAbsolute = goalAbsolute
    }

    var ratio: Double? { values[1] > 0 ? values[0] / values[1] : nil }

    var met: Bool? {
        if let goal, let ratio { return ratio <= goal }
        if let goalAbsolute { return values[0] * scale <= goalAbsolute }
        return nil
    }

    var markdown: String {
        let goalText = goal.map { "<= \(fmt($0, 2))x" } ?? goalAbsolute.map { "<= \(fmt($0, 0))" } ?? ""
        let verdict = met.map { $0 ? " met" : " NOT met" } ?? ""
        return "| \(figure) | \(fmt(values[0] * scale, digits)) | \(fmt(values[1] * scale, digits)) | \(ratio.map { fmt($0, 2) + "x" } ?? "-") | \(goalText)\(verdict) |"
    }
}
