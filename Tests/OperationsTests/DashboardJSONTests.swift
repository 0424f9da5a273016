import Foundation
import Testing
import TestSupport

/// The structure Grafana's importer needs (no Grafana runs here): what a dashboard model of
/// schema 39 carries, and what makes a shared dashboard portable across data sources.
@Suite("Grafana dashboard")
struct DashboardJSONTests {
    let dashboard: [String: Any]
    init() throws { dashboard = try Artifacts.dashboard() }

    @Test func topLevel() {
        #expect(!(dashboard["title"] as? String ?? "").isEmpty)
        #expect((dashboard["uid"] as? String ?? "").range(of: #"^[A-Za-z0-9_-]{1,40}$"#, options: .regularExpression) != nil)
        #expect((dashboard["schemaVersion"] as? Int ?? 0) >= 36, "schemaVersion older than Grafana 9")
        #expect(dashboard["id"] == nil || dashboard["id"] is NSNull, "an id ties the JSON to one Grafana database")
        #expect(dashboard["panels"] is [[String: Any]])
        #expect((dashboard["time"] as? [String: Any])?["from"] is String)
        #expect((dashboard["annotations"] as? [String: Any])?["list"] is [Any])
    }

    @Test func panelsHaveDatasourceTargetsAndGridPos() throws {
        let panels = Artifacts.panels(dashboard)
        #expect(panels.count >= 20)
        var ids = Set<Int>()
        for p in panels {
            let title = p["title"] as? String ?? "?"
            let type = p["type"] as? String ?? ""
            let id = try #require(p["id"] as? Int, "\(title): id")
            #expect(ids.insert(id).inserted, "\(title): duplicate id \(id)")
            #expect(["row", "stat", "table", "timeseries", "gauge", "bargauge", "heatmap", "text"].contains(type), "\(title): type '\(type)'")
            let grid = try #require(p["gridPos"] as? [String: Any], "\(title): gridPos")
            let (x, y, w, h) = (grid["x"] as? Int ?? -1, grid["y"] as? Int ?? -1, grid["w"] as? Int ?? 0, grid["h"] as? Int ?? 0)
            #expect(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24, "\(title): gridPos \(grid)")
            if type == "row" {
                #expect(p["collapsed"] is Bool, "\(title): row without collapsed")
                #expect(p["panels"] is [Any], "\(title): row without panels")
                continue
            }
            let ds = try #require(p["datasource"] as? [String: Any], "\(title): datasource")
            #expect(ds["type"] as? String == "prometheus" && ds["uid"] as? String == "${datasource}", "\(title): datasource \(ds)")
            let targets = try #require(p["targets"] as? [[String: Any]], "\(title): targets")
            #expect(!targets.isEmpty, "\(title): no targets")
            var refs = Set<String>()
            for t in targets {
                #expect(!(t["expr"] as? String ?? "").isEmpty, "\(title): target without expr")
                #expect(refs.insert(t["refId"] as? String ?? "").inserted, "\(title): refId missing or repeated")
                if let tds = t["datasource"] as? [String: Any] { #expect(tds["uid"] as? String == "${datasource}") }
            }
        }
    }

    /// Panels on the same level must not overlap, or Grafana moves them around on import.
    @Test func layoutDoesNotOverlap() {
        func check(_ list: [[String: Any]]) {
            var cells = Set<Int>()
            for p in list {
                let g = p["gridPos"] as? [String: Int] ?? [:]
                for y in (g["y"] ?? 0)..<((g["y"] ?? 0) + (g["h"] ?? 0)) {
                    for x in (g["x"] ?? 0)..<((g["x"] ?? 0) + (g["w"] ?? 0)) {
                        #expect(cells.insert(y * 24 + x).inserted, "'\(p["title"] ?? "?")' overlaps another panel at x=\(x) y=\(y)")
                    }
                }
                check(p["panels"] as? [[String: Any]] ?? [])
            }
        }
        check(dashboard["panels"] as? [[String: Any]] ?? [])
    }

    @Test func variables() throws {
        let vars = Dictionary(uniqueKeysWithValues: Artifacts.variables(dashboard).map { ($0["name"] as? String ?? "", $0) })
        let ds = try #require(vars["datasource"])
        #expect(ds["type"] as? String == "datasource" && ds["query"] as? String == "prometheus")
        for name in ["instance", "guest"] {
            let v = try #require(vars[name], "no \(name) variable")
            #expect(v["type"] as? String == "query")
            #expect((v["datasource"] as? [String: Any])?["uid"] as? String == "${datasource}")
            #expect(v["multi"] as? Bool == true && v["includeAll"] as? Bool == true, "\(name): multi-value with All")
        }
        let guestQuery = ((vars["guest"]?["query"] as? [String: Any])?["query"] as? String) ?? ""
        #expect(guestQuery.contains("$instance"), "the guest list should follow the chosen hosts")
    }

    /// Multi-value variables expand to a regex: `label="$var"` matches nothing once two are chosen.
    @Test func variablesAreMatchedAsRegexes() {
        for (q, _) in Artifacts.dashboardQueries(dashboard) {
            let raw = q.expr
            #expect(!raw.contains("$"), "\(q.origin): unsubstituted variable in \(raw)")
        }
        for p in Artifacts.panels(dashboard) {
            for t in p["targets"] as? [[String: Any]] ?? [] {
                let expr = t["expr"] as? String ?? ""
                #expect(expr.range(of: #"[^=!~]=\s*"\$"#, options: .regularExpression) == nil, "\(p["title"] ?? "?"): use =~ with $variables: \(expr)")
            }
        }
    }

    /// The four views the issue names, each as a row.
    @Test func rowsForFleetHostGuestAndIrqscope() {
        let rows = Artifacts.panels(dashboard).filter { $0["type"] as? String == "row" }.compactMap { $0["title"] as? String }
        for word in ["Fleet", "Host", "Guest", "irqscope"] {
            #expect(rows.contains { $0.contains(word) }, "no row for \(word): \(rows)")
        }
    }
}
