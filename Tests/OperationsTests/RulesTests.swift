import Foundation
import Testing
import TestSupport

@Suite("Prometheus rules")
struct RulesTests {
    @Test func promtoolAcceptsTheRules() throws {
        let r = try run(["promtool", "check", "rules", Artifacts.rulesPath])
        #expect(r.status == 0, "promtool check rules: \(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("SUCCESS"))
    }

    @Test func promtoolUnitTestsPass() throws {
        let r = try run(["promtool", "test", "rules", Artifacts.ruleTestsPath], timeout: 300)
        #expect(r.status == 0, "promtool test rules: \(r.stdout)\(r.stderr)")
    }

    /// Each alert has a case where it fires and one where it stays quiet, so a broken threshold
    /// or selector fails `promtool test rules` one way or the other.
    @Test func everyAlertIsTestedFiringAndQuiet() throws {
        let doc = try yamlValue(Artifacts.ruleTestsPath) as? [String: Any] ?? [:]
        var firing: [String: Int] = [:], quiet: [String: Int] = [:]
        for test in doc["tests"] as? [[String: Any]] ?? [] {
            for c in test["alert_rule_test"] as? [[String: Any]] ?? [] {
                let name = c["alertname"] as? String ?? ""
                if (c["exp_alerts"] as? [Any] ?? []).isEmpty { quiet[name, default: 0] += 1 } else { firing[name, default: 0] += 1 }
            }
        }
        let alerts = try Artifacts.rules().filter(\.isAlert)
        #expect(alerts.count >= 7)
        for a in alerts {
            #expect(firing[a.name, default: 0] > 0, "\(a.name): no promtool test where it fires")
            #expect(quiet[a.name, default: 0] > 0, "\(a.name): no promtool test where it stays quiet")
        }
    }

    /// What the issue asks of every alert: a severity an alert manager can route on, and text an
    /// operator woken at night can act on.
    @Test func everyAlertHasSeverityAndRunbook() throws {
        for a in try Artifacts.rules() where a.isAlert {
            let labels = a.fields["labels"] as? [String: Any] ?? [:]
            let annotations = a.fields["annotations"] as? [String: Any] ?? [:]
            #expect(["critical", "warning", "info"].contains(labels["severity"] as? String ?? ""), "\(a.name): severity")
            for key in ["summary", "description"] {
                #expect(!(annotations[key] as? String ?? "").isEmpty, "\(a.name): no \(key)")
            }
            #expect((annotations["runbook"] as? String ?? "").count > 80, "\(a.name): runbook missing or too short to act on")
        }
    }
}
