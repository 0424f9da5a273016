import Foundation
import Testing
import TestSupport

extension Host {
    /// irqscope's own cost per BPF program, as ebpf_exporter reports it: absent while the kernel
    /// does not count (kernel.bpf_stats_enabled=0), and with it on, the kernel's counts as bpftool
    /// reads them before and after the scrape.
    @Suite struct ProgramCost {
        static let sysctl = "/proc/sys/kernel/bpf_stats_enabled"

        /// bpftool's run counts by program name (the programs carry their full names in BTF).
        func bpftoolRuns() throws -> [String: UInt64] {
            let r = try run(["bpftool", "-j", "prog", "show"])
            let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
            var out: [String: UInt64] = [:]
            for p in list {
                guard let name = p["name"] as? String else { continue }
                out[name] = max(out[name] ?? 0, (p["run_cnt"] as? NSNumber)?.uint64Value ?? 0)
            }
            return out
        }

        @Test func programCostsAreTheKernelsCounts() throws {
            let saved = try String(contentsOfFile: Self.sysctl, encoding: .utf8)
            defer { try? saved.write(toFile: Self.sysctl, atomically: false, encoding: .utf8) }
            try "0".write(toFile: Self.sysctl, atomically: false, encoding: .utf8)
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let off = try HostEnv.scrape(port)
            #expect(!off.samples.contains { $0.name.hasPrefix("irqscope_bpf_program_") }, "program costs served while the kernel does not count them")

            try "1".write(toFile: Self.sysctl, atomically: false, encoding: .utf8)
            // an idle VM can go seconds without a device interrupt: a synced write makes disk ones
            let scratch = NSTemporaryDirectory() + "irqscope-io-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let ran = try HostEnv.eventually(10) {
                _ = try? run(["dd", "if=/dev/zero", "of=\(scratch)", "bs=64k", "count=16", "oflag=direct", "conv=fsync"])
                return try bpftoolRuns().contains { $0.key.contains("irq_handler_exit") && $0.value > 0 }
            }
            try #require(ran, "no device interrupt in 10 s, even with disk writes")
            let before = try bpftoolRuns()
            let on = try HostEnv.scrape(port)
            let after = try bpftoolRuns()
            let runs = on.samples.filter { $0.name == "irqscope_bpf_program_runs_total" }
            let seconds = on.samples.filter { $0.name == "irqscope_bpf_program_run_seconds_total" }
            #expect(runs.count >= 10 && runs.count == seconds.count, "\(runs.count) programs with runs, \(seconds.count) with time")
            for s in runs {
                let program = s.labels["program"] ?? ""
                guard let lo = before[program], let hi = after[program] else {
                    Issue.record("\(program) is not a program bpftool lists"); continue
                }
                #expect(Double(lo) <= s.value && s.value <= Double(hi), "\(program): irqscope \(s.value), bpftool \(lo)...\(hi)")
            }
            let exits = runs.filter { ($0.labels["program"] ?? "").contains("irq_handler_exit") }
            #expect(exits.contains { $0.value > 0 }, "bpftool saw the per-interrupt program run, irqscope serves \(exits)")
        }

        /// The maps' kernel memory as served and in /probes is what the kernel states for the
        /// exporter's own maps: bpftool's memlock for the map ids in the exporter's fdinfo.
        @Test func mapBytesAreWhatTheKernelStates() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let served = try HostEnv.scrape(port).samples.filter { $0.name == "irqscope_bpf_map_bytes" }
            let probes = try JSONSerialization.jsonObject(with: Data(try httpGet("http://127.0.0.1:\(port)/probes").body.utf8)) as? [String: Any]
            let reported = probes?["bpf_map_bytes"] as? [String: Int] ?? [:]
            let fds = "/proc/\(server.pid)/fd"
            let ids = Set(try FileManager.default.contentsOfDirectory(atPath: fds).compactMap { fd -> Int? in
                guard (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fds)/\(fd)")) == "anon_inode:bpf-map" else { return nil }
                let info = try? String(contentsOfFile: "/proc/\(server.pid)/fdinfo/\(fd)", encoding: .utf8)
                return info?.split(separator: "\n").first { $0.hasPrefix("map_id:") }.flatMap { Int($0.dropFirst(7).trimmingCharacters(in: .whitespaces)) }
            })
            let r = try run(["bpftool", "-j", "map", "show"])
            let maps = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? [])
                .filter { ids.contains($0["id"] as? Int ?? -1) }
            #expect(maps.count >= 7, "the exporter holds \(maps.count) maps: \(ids)")
            #expect(served.count == maps.count && reported.count == maps.count, "served \(served.count), /probes \(reported.count), kernel \(maps.count)")
            for m in maps {
                let name = m["name"] as? String ?? "", memlock = m["bytes_memlock"] as? Int ?? -1
                // the kernel keeps 15 characters of a name
                let s = served.first { ($0.labels["map"] ?? "").prefix(15) == name }
                #expect(s?.value == Double(memlock), "\(name): served \(String(describing: s?.value)), kernel \(memlock)")
                #expect(reported.first { $0.key.prefix(15) == name }?.value == memlock, "\(name) in /probes")
            }
        }
    }
}
