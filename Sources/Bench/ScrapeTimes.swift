import ArgumentParser
import Glibc

/// Scrape times of exporters already running (the lab's scale guest starts them itself, and a
/// TCG guest cannot afford serve's start-up rounds): interleaved keep-alive scrapes as
/// Prometheus sends them. One line per exporter, key=value, for the lab's results.
struct ScrapeTimes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrapes",
        abstract: "Time interleaved Prometheus-like scrapes of running exporters on 127.0.0.1; print p50, p90 and bytes per exporter, and the first one's p50 over each other's.")

    @Option(name: .customLong("target"), help: ArgumentHelp("NAME=PORT of an exporter on 127.0.0.1, repeatable; the first is the one ratios are of.", valueName: "name=port"))
    var targets: [String] = []

    @Option(help: "Scrapes of each exporter.")
    var scrapes = 300

    func validate() throws {
        if targets.isEmpty { throw ValidationError("--target: give at least one NAME=PORT") }
        for t in targets where parse(t) == nil { throw ValidationError("--target: '\(t)' is not NAME=PORT") }
        if scrapes < 1 { throw ValidationError("--scrapes must be at least 1") }
    }

    private func parse(_ target: String) -> (name: String, port: Int)? {
        let parts = target.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        return (String(parts[0]), port)
    }

    func run() throws {
        let list = targets.compactMap(parse)
        let connections = list.map { HTTPConnection(port: $0.port) }
        var times = Array(repeating: [Double](), count: list.count), bytes = times, series = Array(repeating: 0, count: list.count)
        // each exporter's first scrape builds what later ones reuse: not counted
        for (i, c) in connections.enumerated() {
            guard let r = c.get("/metrics", headers: Exporter.prometheusHeaders(gzip: false)), r.status == 200 else {
                throw BenchError("\(list[i].name): no metrics on port \(list[i].port)")
            }
            series[i] = count(String(decoding: r.body, as: UTF8.self), nil)
        }
        for n in 0..<scrapes {
            // alternate who goes first: neither always scrapes right after the other
            for i in (n % 2 == 0 ? Array(list.indices) : list.indices.reversed()) {
                let t0 = now()
                guard let r = connections[i].get("/metrics", headers: Exporter.prometheusHeaders()), r.status == 200 else {
                    throw BenchError("\(list[i].name): scrape \(n + 1) failed")
                }
                times[i].append(now() - t0)
                bytes[i].append(Double(r.wireBytes))
            }
        }
        for (i, t) in list.enumerated() {
            var line = "target=\(t.name) scrapes=\(scrapes) series=\(series[i]) p50_ms=\(ms(quantile(times[i], 0.5))) p90_ms=\(ms(quantile(times[i], 0.9))) wire_bytes=\(fmt(median(bytes[i]), 0))"
            if i > 0 { line += " first_p50_over_this=\(fmt(quantile(times[0], 0.5) / quantile(times[i], 0.5), 2))" }
            print(line)
        }
    }
}
