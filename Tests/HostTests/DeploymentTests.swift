import Foundation
import Testing
import TestSupport

extension Host {
    /// irqscope under the credentials deploy/ grants, set up the way systemd and a container
    /// runtime would (neither runs here): the arguments, users and capabilities are read from the
    /// files themselves, so a change there that breaks serving fails here.
    @Suite struct Deployment {
        /// A copy of the binary any user may execute (the build tree may not be reachable).
        static func binaryCopy() throws -> (dir: String, path: String) {
            let dir = NSTemporaryDirectory() + "irqscope-deploy-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: HostEnv.binary, toPath: dir + "/irqscope")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
            return (dir, dir + "/irqscope")
        }

        /// `serve` arguments with the listen address moved to a free local port.
        static func args(_ words: [String], port: Int) -> [String] {
            words.filter { !$0.hasPrefix("$") }.map {
                $0.hasPrefix("--web.listen-address=") ? "--web.listen-address=127.0.0.1:\(port)" : $0
            }
        }

        /// CAP_BPF CAP_PERFMON / [BPF, PERFMON] -> +bpf,+perfmon (setpriv's spelling)
        static func setprivCaps(_ names: [String]) -> String {
            names.map { "+" + ($0.uppercased().hasPrefix("CAP_") ? String($0.dropFirst(4)) : $0).lowercased() }.joined(separator: ",")
        }

        static func status(_ pid: Int32, _ key: String) throws -> String {
            let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            return text.split(separator: "\n").first { $0.hasPrefix(key + ":") }
                .map { $0.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces) } ?? ""
        }

        /// Effective capabilities beyond CAP_BPF (kept only on kernels that refuse map reads without it).
        static func capabilitiesBeyondBPF(_ pid: Int32) throws -> UInt64 {
            (UInt64(try status(pid, "CapEff"), radix: 16) ?? .max) & ~(UInt64(1) << 39)
        }

        @Test func asTheSystemdUnitGrants() throws {
            var unit: [String: String] = [:]
            for line in try String(contentsOfFile: packageRoot + "/deploy/irqscope.service", encoding: .utf8).split(separator: "\n")
            where !line.hasPrefix("#") && line.contains("=") {
                let kv = line.split(separator: "=", maxSplits: 1)
                unit[String(kv[0])] = String(kv[1])
            }
            #expect(unit["DynamicUser"] == "yes" || unit["User"] != nil, "the unit should not run as root")
            let ambient = (unit["AmbientCapabilities"] ?? "").split(separator: " ").map(String.init)
            let bounding = (unit["CapabilityBoundingSet"] ?? "").split(separator: " ").map(String.init)
            #expect(Set(ambient) == ["CAP_BPF", "CAP_PERFMON"] && Set(bounding) == Set(ambient))
            let exec = (unit["ExecStart"] ?? "").split(separator: " ").map(String.init)
            #expect(exec.first == "/usr/local/bin/irqscope" && exec.dropFirst().first == "serve")
            let (dir, binary) = try Self.binaryCopy()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = freePort()
            var argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--bounding-set=-all,\(Self.setprivCaps(bounding))",
                        "--inh-caps=\(Self.setprivCaps(ambient))", "--ambient-caps=\(Self.setprivCaps(ambient))"]
            if unit["NoNewPrivileges"] == "yes" { argv.append("--no-new-privs") }
            argv += [binary] + Self.args(Array(exec.dropFirst()), port: port)
            let p = try HostEnv.start(argv, port: port)
            defer { _ = p.stop() }
            #expect(try HostEnv.scrape(port).values("irqscope_interrupts_total").count > 0)
            #expect(try Self.status(p.pid, "Uid").hasPrefix("65534"))
            #expect(try Self.capabilitiesBeyondBPF(p.pid) == 0, "capabilities kept after attaching")
            #expect(p.stderrSoFar.contains("capabilities dropped"), "\(p.stderrSoFar)")
        }

        /// uid 0 holding only the added capabilities, no_new_privs, / and /sys read-only, the
        /// host's pid namespace: what the DaemonSet's securityContext gives the container.
        @Test func asTheDaemonSetGrants() throws {
            let docs = try yamlDocuments(packageRoot + "/deploy/kubernetes/irqscope.yaml")
            let ds = try #require(docs.first { $0["kind"] as? String == "DaemonSet" })
            let pod = ((ds["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
            let container = try #require((pod["containers"] as? [[String: Any]])?.first)
            let sc = container["securityContext"] as? [String: Any] ?? [:]
            let caps = (sc["capabilities"] as? [String: [String]])?["add"] ?? []
            #expect(sc["runAsUser"] as? Int == 0)
            let (dir, binary) = try Self.binaryCopy()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = freePort()
            var setpriv = ["setpriv", "--bounding-set=-all,\(Self.setprivCaps(caps))", "--inh-caps=-all"]
            if sc["allowPrivilegeEscalation"] as? Bool == false { setpriv.append("--no-new-privs") }
            var mounts = "mount --bind /sys /sys && mount -o remount,bind,ro /sys"
            if sc["readOnlyRootFilesystem"] as? Bool == true { mounts += " && mount -o remount,bind,ro /" }
            let argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", mounts + " && exec \"$@\"", "sh"]
                + setpriv + [binary] + Self.args(container["args"] as? [String] ?? [], port: port)
            let p = try HostEnv.start(argv, port: port)
            defer { _ = p.stop() }
            #expect(try HostEnv.scrape(port).values("irqscope_interrupts_total").count > 0)
            #expect(try Self.status(p.pid, "Uid").hasPrefix("0"))
            #expect(try Self.status(p.pid, "NoNewPrivs") == "1")
            #expect(UInt64(try Self.status(p.pid, "CapBnd"), radix: 16) == (1 << 38 | 1 << 39), "bounding set is not the added capabilities")
            #expect(try Self.capabilitiesBeyondBPF(p.pid) == 0, "capabilities kept after attaching")
            #expect(p.stderrSoFar.contains("capabilities dropped"), "\(p.stderrSoFar)")
        }
    }
}
