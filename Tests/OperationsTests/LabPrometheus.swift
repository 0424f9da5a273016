import Foundation
import TestSupport

/// A real Prometheus holding what irqscope served in the lab: every scrape kept as a fixture
/// (Tests/Fixtures/lab/KERNEL/BOOT/NAME.metrics) becomes one instance, backfilled over the last
/// two hours with `promtool tsdb create-blocks-from openmetrics`, and the recording rules are
/// backfilled over the same range with `promtool tsdb create-blocks-from rules`.
///
/// A scrape is one point in time; to give rate() and increase() something to work on, counters
/// rise linearly from zero to the scraped value over the two hours and gauges stay flat. Values
/// and label sets are irqscope's; only the time shape is made up. `up` is Prometheus' own series
/// and is made up too: 1 for every lab instance, 0 for one extra target, "lab-unreachable".
final class LabPrometheus {
    static let fixtures = packageRoot + "/Tests/Fixtures/lab"
    static let step = 60
    static let span = 7200
    static let unreachable = "lab-unreachable"

    let dir: String
    let end: Int
    let start: Int
    private(set) var port = 0
    private var server: Running?

    /// instance -> the scrape irqscope served there
    static func scrapes() throws -> [String: ParsedExposition] {
        var out: [String: ParsedExposition] = [:]
        let fm = FileManager.default
        for kernel in try fm.contentsOfDirectory(atPath: fixtures).sorted() {
            for boot in (try? fm.contentsOfDirectory(atPath: "\(fixtures)/\(kernel)")) ?? [] {
                for file in (try? fm.contentsOfDirectory(atPath: "\(fixtures)/\(kernel)/\(boot)")) ?? [] where file.hasSuffix(".metrics") {
                    let text = try String(contentsOfFile: "\(fixtures)/\(kernel)/\(boot)/\(file)", encoding: .utf8)
                    // a kernel's real-VMM cells name their scrapes alike (realvmm.metrics): the cell names the instance
                    let stem = String(file.dropLast(".metrics".count))
                    let instance = boot.hasPrefix("realvmm-") ? "lab-\(kernel)-\(boot)\(stem.dropFirst("realvmm".count))" : "lab-\(kernel)-\(stem)"
                    guard out[instance] == nil else { throw ExpositionError(description: "two lab scrapes would be one instance: \(instance)") }
                    out[instance] = try parseExposition(text)
                }
            }
        }
        return out
    }

    init() throws {
        dir = NSTemporaryDirectory() + "irqscope-dash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        end = Int(Date().timeIntervalSince1970) / 60 * 60 - 60
        start = end - Self.span
        do {
            try backfillScrapes()
            try startServer()
            try backfillRecordingRules()
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    func stop() {
        _ = server?.stop()
        server = nil
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func backfillScrapes() throws {
        var lines: [String: [String]] = [:] // metric name -> sample lines, grouped per family
        let times = Array(stride(from: start, through: end, by: Self.step))
        func emit(_ name: String, _ labels: [String: String], _ value: (Int) -> Double) {
            let l = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escape($0.value))\"" }.joined(separator: ",")
            for t in times { lines[name, default: []].append("\(name){\(l)} \(value(t)) \(t)") }
        }
        for (instance, scrape) in try Self.scrapes() {
            for s in scrape.samples {
                var labels = s.labels
                labels["instance"] = instance
                labels["job"] = "irqscope"
                if Self.isCounter(s.name, scrape.types) {
                    emit(s.name, labels) { t in s.value * Double(t - self.start) / Double(Self.span) }
                } else {
                    emit(s.name, labels) { _ in s.value }
                }
            }
            emit("up", ["instance": instance, "job": "irqscope"]) { _ in 1 }
        }
        emit("up", ["instance": Self.unreachable, "job": "irqscope"]) { _ in 0 }
        let text = lines.keys.sorted().map { lines[$0]!.joined(separator: "\n") }.joined(separator: "\n") + "\n# EOF\n"
        try text.write(toFile: dir + "/lab.om", atomically: true, encoding: .utf8)
        let r = try run(["promtool", "tsdb", "create-blocks-from", "openmetrics", dir + "/lab.om", dir + "/data"], timeout: 300)
        guard r.status == 0 else { throw ExpositionError(description: "backfill: \(r.stdout)\(r.stderr)") }
    }

    private func startServer() throws {
        _ = server?.stop()
        try """
            global: {evaluation_interval: 5s}
            rule_files: ['\(Artifacts.rulesPath)']
            """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        port = freePort()
        let s = try Running(["prometheus", "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
                             "--web.listen-address=127.0.0.1:\(port)", "--storage.tsdb.retention.time=30d"])
        server = s
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let r = try? httpGet("http://127.0.0.1:\(port)/-/ready"), r.status == 200 { return }
            guard s.process.isRunning else { break }
            usleep(200_000)
        }
        throw ExpositionError(description: "prometheus never became ready: \(s.stderrSoFar.suffix(1500))")
    }

    /// Recording rules over the backfilled range, then a restart so the blocks are loaded.
    private func backfillRecordingRules() throws {
        let r = try run(["promtool", "tsdb", "create-blocks-from", "rules", "--start=\(start)", "--end=\(end)",
                         "--url=http://127.0.0.1:\(port)", "--output-dir=\(dir)/rules", "--eval-interval=\(Self.step)s",
                         Artifacts.rulesPath], timeout: 300)
        guard r.status == 0 else { throw ExpositionError(description: "rule backfill: \(r.stdout)\(r.stderr)") }
        let fm = FileManager.default
        let blocks = try fm.contentsOfDirectory(atPath: dir + "/rules")
        guard !blocks.isEmpty else { throw ExpositionError(description: "rule backfill wrote no blocks: \(r.stdout)\(r.stderr)") }
        _ = server?.stop()
        for b in blocks { try fm.moveItem(atPath: "\(dir)/rules/\(b)", toPath: "\(dir)/data/\(b)") }
        try startServer()
    }

    /// An instant query at the end of the backfilled range.
    func query(_ expr: String) throws -> [[String: Any]] {
        try api("query?time=\(end)&query=" + expr.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!) as? [[String: Any]] ?? []
    }

    func api(_ path: String) throws -> Any {
        let r = try httpGet("http://127.0.0.1:\(port)/api/v1/\(path)")
        let json = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any] ?? [:]
        guard json["status"] as? String == "success" else {
            throw ExpositionError(description: "\(path.prefix(200)): \(json["error"] ?? r.body.prefix(300))")
        }
        let data = json["data"] as? [String: Any] ?? [:]
        return data["result"] ?? data
    }

    static func isCounter(_ name: String, _ types: [String: String]) -> Bool {
        if types[name] == "counter" { return true }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            if types[String(name.dropLast(suffix.count))] == "histogram" { return true }
        }
        return false
    }

    static func escape(_ v: String) -> String {
        v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
