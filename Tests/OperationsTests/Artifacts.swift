import Foundation
import TestSupport

/// What Dashboards/ ships, read the way Grafana and Prometheus read it.
enum Artifacts {
    static let dashboardPath = packageRoot + "/Dashboards/irqscope.json"
    static let rulesPath = packageRoot + "/Dashboards/irqscope.rules.yml"
    static let ruleTestsPath = packageRoot + "/Dashboards/tests/irqscope.test.yml"

    static func dashboard() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dashboardPath))) as? [String: Any] ?? [:]
    }

    /// Every panel, those inside collapsed rows included.
    static func panels(_ dashboard: [String: Any]) -> [[String: Any]] {
        func walk(_ list: [[String: Any]]) -> [[String: Any]] {
            list.flatMap { [$0] + walk($0["panels"] as? [[String: Any]] ?? []) }
        }
        return walk(dashboard["panels"] as? [[String: Any]] ?? [])
    }

    static func variables(_ dashboard: [String: Any]) -> [[String: Any]] {
        (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
    }

    struct Rule {
        var name: String
        var expr: String
        var isAlert: Bool
        var fields: [String: Any]
    }

    static func rules() throws -> [Rule] {
        let doc = try yamlValue(rulesPath) as? [String: Any] ?? [:]
        return (doc["groups"] as? [[String: Any]] ?? []).flatMap { group in
            (group["rules"] as? [[String: Any]] ?? []).map { r in
                Rule(name: (r["alert"] ?? r["record"]) as? String ?? "", expr: r["expr"] as? String ?? "",
                     isAlert: r["alert"] != nil, fields: r)
            }
        }
    }

    /// A query as Grafana would send it, with its variables at their "All" values.
    struct Query: CustomStringConvertible {
        var origin: String
        var expr: String
        var description: String { "\(origin): \(expr)" }
    }

    static let substitutions: [(String, String)] = [
        ("${instance}", ".*"), ("$instance", ".*"), ("${guest}", ".*"), ("$guest", ".*"),
        ("$__rate_interval", "5m"), ("$__range", "1h"), ("$__interval", "1m"),
    ]

    static func grafanaToPromQL(_ expr: String) -> String {
        substitutions.reduce(expr) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }

    /// Panel targets and variable queries. `label_values(SELECTOR, LABEL)` becomes SELECTOR; the
    /// caller checks LABEL on the result.
    static func dashboardQueries(_ dashboard: [String: Any]) -> [(query: Query, label: String?)] {
        var out: [(Query, String?)] = []
        for p in panels(dashboard) {
            for t in p["targets"] as? [[String: Any]] ?? [] {
                out.append((Query(origin: "panel '\(p["title"] as? String ?? "?")' \(t["refId"] as? String ?? "")",
                                  expr: grafanaToPromQL(t["expr"] as? String ?? "")), nil))
            }
        }
        for v in variables(dashboard) where v["type"] as? String == "query" {
            let q = (v["query"] as? [String: Any])?["query"] as? String ?? v["query"] as? String ?? ""
            let inner = q.replacingOccurrences(of: #"^label_values\((.*),\s*(\w+)\)$"#, with: "$1", options: .regularExpression)
            let label = q.replacingOccurrences(of: #"^label_values\((.*),\s*(\w+)\)$"#, with: "$2", options: .regularExpression)
            out.append((Query(origin: "variable \(v["name"] as? String ?? "?")", expr: grafanaToPromQL(inner)), label))
        }
        return out
    }

    /// Series names an expression reads: irqscope's own and the recording rules built on them.
    static func metricNames(in expr: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: #"[A-Za-z_:]*irqscope_[A-Za-z0-9_:]*"#)
        let ns = expr as NSString
        return Set(regex.matches(in: expr, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) })
    }

    /// The operands of an alert, each without its threshold: each must find series even when the
    /// alert (rightly) does not fire.
    static func operands(_ expr: String) -> [String] {
        expr.components(separatedBy: .newlines).joined(separator: " ")
            .replacingOccurrences(of: #"\s+(and|unless|or)\s+on\s*\([^)]*\)\s+"#, with: "\u{1}", options: .regularExpression)
            .split(separator: "\u{1}")
            .map { $0.replacingOccurrences(of: #"\s*(==|!=|>=|<=|>|<)\s*-?[0-9.]+\s*$"#, with: "", options: .regularExpression) }
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
