import Foundation
import Testing
import TestSupport

/// Every PromQL expression of the dashboard and the rules, evaluated by a real Prometheus over
/// what irqscope served in the lab (see LabPrometheus).
@Suite("Queries against lab metrics", .serialized)
struct QueryTests {
    /// Names irqscope exported in the lab, histogram series included.
    static func exported() throws -> Set<String> {
        Set(try LabPrometheus.scrapes().values.flatMap { $0.samples.map(\.name) })
    }

    @Test func everyNameIsExportedOrRecorded() throws {
        let exported = try Self.exported()
        let rules = try Artifacts.rules()
        let recorded = Set(rules.filter { !$0.isAlert }.map(\.name))
        #expect(exported.count > 25, "too few names in the lab fixtures: \(exported.count)")
        var exprs = rules.map { ("rule \($0.name)", $0.expr) }
        exprs += Artifacts.dashboardQueries(try Artifacts.dashboard()).map { ($0.query.origin, $0.query.expr) }
        for (origin, expr) in exprs {
            for name in Artifacts.metricNames(in: expr) {
                #expect(exported.contains(name) || recorded.contains(name), "\(origin): \(name) is neither exported by irqscope nor recorded")
            }
        }
    }

    @Test func everyExpressionReturnsData() throws {
        let prom = try LabPrometheus()
        defer { prom.stop() }
        for (q, label) in Artifacts.dashboardQueries(try Artifacts.dashboard()) {
            var exprs = [q.expr]
            // a stat that shows 0 instead of "No data" must still find data without its fallback
            if q.expr.hasSuffix(" or vector(0)") { exprs.append(String(q.expr.dropLast(" or vector(0)".count))) }
            for e in exprs {
                let result = try prom.query(e)
                #expect(!result.isEmpty, "\(q.origin) returned nothing: \(e)")
                if let label {
                    let values = result.compactMap { ($0["metric"] as? [String: String])?[label] }.filter { !$0.isEmpty }
                    #expect(!values.isEmpty, "\(q.origin): no series carries '\(label)'")
                }
            }
        }
        for rule in try Artifacts.rules() {
            if rule.isAlert {
                for operand in Artifacts.operands(rule.expr) {
                    #expect(!(try prom.query(operand)).isEmpty, "alert \(rule.name): operand returned nothing: \(operand)")
                }
            } else {
                #expect(!(try prom.query(rule.expr)).isEmpty, "recording rule \(rule.name) returned nothing")
                #expect(!(try prom.query(rule.name)).isEmpty, "recording rule \(rule.name) was not backfilled")
            }
        }
    }

    /// Each alert fires on the lab instances where the lab made that thing go wrong, and on no
    /// other. The reasons come from the lab's own ground truth (Tests/LabChecks).
    static let expectedAlerts: [String: Set<String>] = [
        // the hog VMM asks for more vectors than the CPUs have: request_irq fails with ENOSPC
        "IrqscopeRequestIrqFailures": ["lab-5.10-exhaustion", "lab-6.1-exhaustion", "lab-6.12-exhaustion", "lab-6.18-exhaustion", "lab-7.3-exhaustion"],
        // 5.10 and 6.1 have no dynamic MSI-X: alpha's line interrupts during its resize windows are
        // lost (guests-after was scraped once the VMMs had exited: their series are gone); not in
        // the unshared runs, where alpha lost as many but no handler on its line could show it
        "IrqscopeInterruptsLost": ["lab-5.10-guests", "lab-6.1-guests"],
        // beta's VMM re-enables on 6.12, 6.18 and 7.3, whose kernels could add vectors one by one;
        // so does Debian's QEMU 7.2 on 6.12; QEMU 10 there adds dynamically
        "IrqscopeLossyResizeWhereDynamicIsPossible": ["lab-6.12-guests", "lab-6.18-guests", "lab-7.3-guests", "lab-6.12-realvmm-qemu7.2"],
        // 5.10 and 6.1 have no dynamic MSI-X: every guest holding vectors there is flagged from its
        // start (the lab's VMM program, and QEMU 7.2 on 6.1); on 6.12 the exporter, without
        // sys_ptrace, cannot read a root QEMU's exe, so QEMU 7.2 there is not predicted; the scale
        // boot's msix-alloc holds the nvme's vectors on 6.1 (found at start), 2 of them requested
        "IrqscopeGuestResizeWillDisableMSIX": ["lab-5.10-guests", "lab-5.10-trace", "lab-5.10-vfio", "lab-5.10-unshared",
                                               "lab-6.1-guests", "lab-6.1-trace", "lab-6.1-vfio", "lab-6.1-unshared",
                                               "lab-6.1-realvmm-qemu7.2", "lab-6.1-scale", "lab-6.1-scale-after"],
        // on 6.12 and later the one CPU is out of vectors while the hog holds them
        "IrqscopeCPUVectorSpaceNearlyExhausted": ["lab-6.12-exhaustion", "lab-6.18-exhaustion", "lab-7.3-exhaustion"],
        // --attach=tp_btf,raw_tp: no function hooks
        "IrqscopeCoreProbesMissing": ["lab-5.10-tracepoints-only", "lab-6.1-tracepoints-only", "lab-6.12-tracepoints-only",
                                      "lab-6.18-tracepoints-only", "lab-7.3-tracepoints-only"],
        // the exporter with a one-page ring buffer
        "IrqscopeEventsDropped": ["lab-5.10-guests.drops", "lab-6.1-guests.drops", "lab-6.12-guests.drops",
                                  "lab-6.18-guests.drops", "lab-7.3-guests.drops"],
        "IrqscopeDown": [LabPrometheus.unreachable],
    ]

    @Test func alertsFireWhereTheLabWentWrongAndNowhereElse() throws {
        let prom = try LabPrometheus()
        defer { prom.stop() }
        let alerts = try Artifacts.rules().filter(\.isAlert)
        #expect(Set(alerts.map(\.name)) == Set(Self.expectedAlerts.keys))
        for a in alerts {
            var fired = Set(try prom.query(a.expr).compactMap { ($0["metric"] as? [String: String])?["instance"] })
            // The one-page exporter beside each guests boot sees what the full one saw, less the
            // events it dropped, which differ from run to run: it may raise the full one's alerts,
            // never another.
            if a.name != "IrqscopeEventsDropped" {
                let drops = fired.filter { $0.hasSuffix("-guests.drops") }
                for d in drops {
                    #expect(fired.contains(String(d.dropLast(".drops".count))), "\(a.name) fired on \(d) and not on its full exporter")
                }
                fired.subtract(drops)
            }
            #expect(fired == Self.expectedAlerts[a.name], "\(a.name) fired on \(fired.sorted())")
        }
        // the same rules as Prometheus itself loads and evaluates them, now (a minute after the data)
        var states: [String: String] = [:]
        let deadline = Date().addingTimeInterval(30)
        repeat {
            usleep(500_000)
            let groups = (try prom.api("rules") as? [String: Any])?["groups"] as? [[String: Any]] ?? []
            for g in groups {
                for r in g["rules"] as? [[String: Any]] ?? [] {
                    #expect(r["health"] as? String != "err", "\(r["name"] ?? "?"): \(r["lastError"] ?? "")")
                    if r["type"] as? String == "alerting" { states[r["name"] as? String ?? ""] = r["state"] as? String }
                }
            }
        } while states.values.contains("inactive") && Date() < deadline
        for name in Self.expectedAlerts.keys {
            #expect(["pending", "firing"].contains(states[name] ?? ""), "Prometheus evaluated \(name) as \(states[name] ?? "missing")")
        }
    }
}
