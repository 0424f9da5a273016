import Foundation

/// Debian's Prometheus server scraping one job, `irqscope`, every second, until `stop()`.
public final class PrometheusScraper {
    public let port: Int
    private let process: Running
    private let dir = NSTemporaryDirectory() + "irqscope-prom-\(UUID().uuidString)"

    /// `target`: host:port. `settings`: further keys of the scrape config (scheme, tls_config, ...), one per line.
    public init(target: String, settings: [String] = []) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let job = ["- job_name: irqscope"] + (settings + ["static_configs: [{targets: ['\(target)']}]"]).map { "  " + $0 }
        try (["global: {scrape_interval: 1s, scrape_timeout: 1s}", "scrape_configs:"] + job.map { "  " + $0 })
            .joined(separator: "\n").write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        port = freePort()
        process = try Running(["prometheus", "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
                               "--web.listen-address=127.0.0.1:\(port)"])
    }

    /// The result of an instant query; empty when it fails or returns nothing.
    public func query(_ q: String) -> [[String: Any]] {
        let url = "http://127.0.0.1:\(port)/api/v1/query?query=" + q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        guard let r = try? httpGet(url),
              let json = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any] else { return [] }
        return (json["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
    }

    /// `query` again every half second until it returns something or `seconds` have passed.
    public func eventually(_ q: String, seconds: Double = 40) -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(seconds)
        var result = query(q)
        while result.isEmpty && Date() < deadline {
            usleep(500_000)
            result = query(q)
        }
        return result
    }

    public var log: String { process.stderrSoFar }

    public func stop() {
        _ = process.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
