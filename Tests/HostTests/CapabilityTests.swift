import Foundation
import Testing
import TestSupport

extension Host {
    @Suite struct Capabilities {
        func threads(_ pid: Int32) throws -> [(name: String, capEff: UInt64, noNewPrivs: Bool)] {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").map { tid in
                let status = try String(contentsOfFile: "/proc/\(pid)/task/\(tid)/status", encoding: .utf8)
                func field(_ key: String) -> String {
                    status.split(separator: "\n").first { $0.hasPrefix(key + ":") }.map { $0.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces) } ?? ""
                }
                return (field("Name"), UInt64(field("CapEff"), radix: 16) ?? .max, field("NoNewPrivs") == "1")
            }
        }

        /// After attaching, no thread keeps a capability (bpf only where the kernel needs it to
        /// read maps), and the maps are still read: counts keep up with /proc/interrupts.
        @Test func everyThreadDropsItsCapabilitiesAndServingGoesOn() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let capBPF: UInt64 = 1 << 39
            let list = try threads(server.pid)
            #expect(list.count >= 3)
            for t in list {
                #expect(t.capEff & ~capBPF == 0, "thread \(t.name) kept capabilities \(String(t.capEff, radix: 16))")
                #expect(t.noNewPrivs, "thread \(t.name) without no_new_privs")
            }
            #expect(server.stderrSoFar.contains("capabilities dropped"))
            let load = try DiskLoad()
            defer { load.stop() }
            let first = try HostEnv.scrape(port).values("irqscope_interrupts_total").map(\.value).reduce(0, +)
            sleep(2)
            let second = try HostEnv.scrape(port).values("irqscope_interrupts_total").map(\.value).reduce(0, +)
            #expect(second > first + 1000, "counts stopped after the drop: \(first) -> \(second)")
        }

        /// Without root: an unprivileged user with CAP_BPF and CAP_PERFMON (what the systemd unit
        /// and the DaemonSet grant) can attach and serve.
        @Test func runsAsAnUnprivilegedUserWithBPFAndPerfmon() throws {
            let dir = NSTemporaryDirectory() + "irqscope-caps-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: HostEnv.binary, toPath: dir + "/irqscope")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
            let port = HostEnv.freePort()
            let p = try Running(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+bpf,+perfmon",
                                 "--ambient-caps=+bpf,+perfmon", dir + "/irqscope", "serve", "--web.listen-address=127.0.0.1:\(port)"])
            defer { _ = p.stop() }
            var ok = false
            for _ in 0..<100 where !ok {
                usleep(200_000)
                ok = (try? httpGet("http://127.0.0.1:\(port)/metrics"))?.body.contains("irqscope_interrupts_total{") ?? false
                if !p.process.isRunning { break }
            }
            #expect(ok, "serve as nobody with bpf,perfmon: \(p.stderrSoFar)")
            let status = try String(contentsOfFile: "/proc/\(p.pid)/status", encoding: .utf8)
            #expect(status.contains("Uid:\t65534"))
        }
    }
}
