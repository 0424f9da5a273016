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

        /// The maps' kernel memory as served, against bpftool's view of the same maps
        /// (entries and value size; a ring buffer's entries are its bytes).
        @Test func mapBytesAreTheMapsBpftoolShows() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let served = try HostEnv.scrape(port).samples.filter { $0.name == "irqscope_bpf_map_bytes" }
            let r = try run(["bpftool", "-j", "map", "show"])
            let maps = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
            for name in ["irq_counts", "events"] {
                let s = try #require(served.first { $0.labels["map"] == name }, "no irqscope_bpf_map_bytes for \(name)")
                let m = try #require(maps.last { $0["name"] as? String == name }, "bpftool lists no \(name)")
                let entries = (m["max_entries"] as? Int) ?? -1, value = (m["bytes_value"] as? Int) ?? -1
                let expected = name == "events" ? entries : entries * ((value + 7) & ~7)
                #expect(s.value == Double(expected), "\(name): served \(s.value), bpftool \(entries) x \(value)")
            }
        }
    }
}
