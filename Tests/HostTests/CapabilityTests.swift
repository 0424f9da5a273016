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
    }
}
