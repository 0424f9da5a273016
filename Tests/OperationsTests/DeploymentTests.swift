import Foundation
import Testing
import TestSupport

/// deploy/: what systemd and Kubernetes read, checked with their own tools where they run
/// offline, and cross-checked where they do not (no cluster here). Tests/HostTests runs the
/// binary under the credentials each file grants.
@Suite("Deployment files")
struct DeploymentTests {
    static let unitPath = packageRoot + "/deploy/irqscope.service"
    static let manifestPath = packageRoot + "/deploy/kubernetes/irqscope.yaml"

    /// The unit with ExecStart pointing at the binary built here, so systemd checks a real path.
    static func unitUsingBuiltBinary() throws -> String {
        let dir = NSTemporaryDirectory() + "irqscope-unit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let binary = irqscopeBinary
        let text = try String(contentsOfFile: unitPath, encoding: .utf8)
            .replacingOccurrences(of: "ExecStart=/usr/local/bin/irqscope", with: "ExecStart=\(binary)")
        try text.write(toFile: dir + "/irqscope.service", atomically: true, encoding: .utf8)
        return dir + "/irqscope.service"
    }

    @Test func systemdAcceptsTheUnit() throws {
        let unit = try Self.unitUsingBuiltBinary()
        defer { try? FileManager.default.removeItem(atPath: (unit as NSString).deletingLastPathComponent) }
        let r = try run(["systemd-analyze", "verify", unit])
        #expect(r.status == 0, "systemd-analyze verify: \(r.stdout)\(r.stderr)")
        #expect(!r.stderr.contains("ignoring"), "systemd ignored a line: \(r.stderr)")
        // with the TLS drop-in applied (verify does not read drop-ins next to a unit given by path)
        let dropIn = try String(contentsOfFile: packageRoot + "/deploy/irqscope.service.d/web-config.conf", encoding: .utf8)
        try (String(contentsOfFile: unit, encoding: .utf8) + "\n" + dropIn).write(toFile: unit, atomically: true, encoding: .utf8)
        let withTLS = try run(["systemd-analyze", "verify", unit])
        #expect(withTLS.status == 0 && !withTLS.stderr.contains("ignoring"), "with web-config.conf: \(withTLS.stderr)")
    }

    /// systemd's own exposure score (0 best, 10 worst): a unit that lost its sandboxing lines
    /// rises well above 3.
    @Test func systemdRatesTheSandboxing() throws {
        let unit = try Self.unitUsingBuiltBinary()
        defer { try? FileManager.default.removeItem(atPath: (unit as NSString).deletingLastPathComponent) }
        let r = try run(["systemd-analyze", "security", "--offline=true", "--threshold=30", "--no-pager", unit])
        let score = r.stdout.range(of: #"exposure level for \S+: [0-9.]+"#, options: .regularExpression).map { String(r.stdout[$0]) } ?? "?"
        print("systemd-analyze security: \(score)")
        #expect(r.status == 0, "exposure above 3.0: \(score)\n\(r.stdout.suffix(3000))")
    }

    @Test func kubernetesObjectsReferToEachOther() throws {
        let docs = try yamlDocuments(Self.manifestPath)
        func object(_ kind: String) throws -> [String: Any] {
            try #require(docs.first { $0["kind"] as? String == kind }, "no \(kind) in \(Self.manifestPath)")
        }
        let ds = try object("DaemonSet"), svc = try object("Service"), sm = try object("ServiceMonitor")
        #expect(ds["apiVersion"] as? String == "apps/v1" && svc["apiVersion"] as? String == "v1"
                && sm["apiVersion"] as? String == "monitoring.coreos.com/v1")
        let spec = ds["spec"] as? [String: Any] ?? [:]
        let template = spec["template"] as? [String: Any] ?? [:]
        let podLabels = (template["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        let selector = (spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
        #expect(!selector.isEmpty && selector.allSatisfy { podLabels[$0.key] == $0.value }, "DaemonSet selector does not match its pods")
        let pod = template["spec"] as? [String: Any] ?? [:]
        #expect(pod["hostPID"] as? Bool == true, "guest processes are host pids")
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let args = container["args"] as? [String] ?? []
        #expect(args.first == "serve")
        let port = try #require((container["ports"] as? [[String: Any]])?.first)
        let listen = args.first { $0.hasPrefix("--web.listen-address=") }
        #expect(listen == "--web.listen-address=:\(port["containerPort"] as? Int ?? 0)", "serve listens elsewhere than the containerPort")
        let sc = container["securityContext"] as? [String: Any] ?? [:]
        let caps = sc["capabilities"] as? [String: [String]] ?? [:]
        #expect(caps["drop"] == ["ALL"] && Set(caps["add"] ?? []) == ["BPF", "PERFMON"], "capabilities: \(caps)")
        #expect(sc["allowPrivilegeEscalation"] as? Bool == false && sc["readOnlyRootFilesystem"] as? Bool == true)
        #expect(sc["privileged"] == nil || sc["privileged"] as? Bool == false)
        for probe in ["readinessProbe", "livenessProbe"] {
            let get = (container[probe] as? [String: Any])?["httpGet"] as? [String: Any]
            #expect(get?["path"] as? String == "/healthz" && get?["port"] as? String == port["name"] as? String, "\(probe)")
        }
        // Service -> pods, ServiceMonitor -> Service, by label and port name
        let svcSpec = svc["spec"] as? [String: Any] ?? [:]
        let svcSelector = svcSpec["selector"] as? [String: String] ?? [:]
        #expect(!svcSelector.isEmpty && svcSelector.allSatisfy { podLabels[$0.key] == $0.value }, "Service selects no pod")
        let svcPort = try #require((svcSpec["ports"] as? [[String: Any]])?.first)
        #expect(svcPort["targetPort"] as? String == port["name"] as? String)
        let svcLabels = (svc["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        let smSpec = sm["spec"] as? [String: Any] ?? [:]
        let smSelector = (smSpec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
        #expect(!smSelector.isEmpty && smSelector.allSatisfy { svcLabels[$0.key] == $0.value }, "ServiceMonitor selects no Service")
        let endpoint = try #require((smSpec["endpoints"] as? [[String: Any]])?.first)
        #expect(endpoint["port"] as? String == svcPort["name"] as? String)
        let namespace = (ds["metadata"] as? [String: Any])?["namespace"] as? String
        for o in [svc, sm] { #expect((o["metadata"] as? [String: Any])?["namespace"] as? String == namespace) }
    }
}
