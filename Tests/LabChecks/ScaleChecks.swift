import Foundation
import Testing
import TestSupport

extension LabChecks {
    // MARK: - Issue 13: a host of 256 possible CPUs and 2,000+ irqs

    /// The kernel-side facts of the scale boot, and irqscope's map memory against the kernel's
    /// own account of the exporter's maps (its fdinfo, and bpftool on the same map ids). Returns
    /// the scrape times, which are printed, not asserted: the guest is emulated.
    public static func scale(_ dir: String) throws -> String {
        let kernel = try keyValues(dir + "/scale.kernel")
        let irqs = Int(kernel["irqs"] ?? "") ?? 0, highest = Int(kernel["highest_irq"] ?? "") ?? 0
        #expect(irqs >= 2000, "/sys/kernel/irq lists \(irqs) irqs")
        #expect(kernel["device_irqs"] == "2048" && kernel["requested"] == "2", "\(kernel)")
        #expect(kernel["possible"] == "0-255" && kernel["online"] == "0-1", "\(kernel)")

        // a slot for every irq: the exporter sized its counts from the irqs it found
        let doctor = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/scale.doctor.json"))) as? [String: Any] ?? [:]
        let slotFact = (doctor["kernel"] as? [String: Any])?["irq slots"] as? String ?? ""
        let slots = Int(slotFact.prefix { $0.isNumber }) ?? 0
        #expect(slots > highest, "irq slots \(slotFact), highest irq \(highest)")

        // served map memory = fdinfo memlock = bpftool's memlock, map by map
        let live = try parseExposition(String(contentsOfFile: dir + "/scale.metrics", encoding: .utf8))
        let served = live.values("irqscope_bpf_map_bytes")
        let fdinfo = try String(contentsOfFile: dir + "/scale.fdinfo", encoding: .utf8).split(separator: "\n").map(fields)
        let bpftool = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/scale.bpftool.json"))) as? [[String: Any]] ?? []
        #expect(fdinfo.count >= 7 && served.count == fdinfo.count, "\(fdinfo.count) maps in the exporter's fdinfo, \(served.count) served")
        var total = 0.0
        for map in fdinfo {
            let id = Int(map["map_id"] ?? "") ?? -1, memlock = Double(map["memlock"] ?? "") ?? -1
            let listed = try #require(bpftool.first { $0["id"] as? Int == id }, "bpftool lists no map \(id)")
            let name = listed["name"] as? String ?? ""
            #expect((listed["bytes_memlock"] as? Int).map(Double.init) == memlock, "\(name): bpftool \(listed["bytes_memlock"] ?? "-"), fdinfo \(memlock)")
            // the kernel keeps 15 characters of a name
            let s = served.first { ($0.labels["map"] ?? "").prefix(15) == name }
            #expect(s?.value == memlock, "\(name): served \(s.map { String($0.value) } ?? "nothing"), kernel \(memlock)")
            total += memlock
        }
        let counts = fdinfo.first { m in bpftool.contains { $0["id"] as? Int == Int(m["map_id"] ?? "") && $0["name"] as? String == "irq_counts" } }
        let countsBytes = Double(counts?["memlock"] ?? "") ?? 0
        #expect(countsBytes >= Double(slots * 256 * 48), "irq_counts: \(countsBytes) bytes for \(slots) slots x 256 CPUs x 48")

        // capped at 1024 slots, the kernel charges an eighth for the counts
        let capped = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/scale-capped.doctor.json"))) as? [String: Any] ?? [:]
        let cappedFact = (capped["kernel"] as? [String: Any])?["irq slots"] as? String ?? ""
        #expect(cappedFact == "1024 (irqs above 1023 are counted as untracked); capped by --bpf.max-irq-slots (the host's irqs would take \(slots))", "\(cappedFact)")
        let cappedCounts = Double((capped["bpf_map_bytes"] as? [String: Int])?["irq_counts"] ?? 0)
        #expect(abs(cappedCounts * Double(slots / 1024) - countsBytes) <= Double(slots / 1024) * 65536,
                "irq_counts: \(cappedCounts) bytes at 1024 slots, \(countsBytes) at \(slots)")

        // series sane: valid, every counting irq named, none untracked
        try promtoolPassed(dir + "/scale.metrics.promtool")
        try promtoolPassed(dir + "/scale-after.metrics.promtool")
        #expect(live.value("irqscope_interrupts_untracked_total") == 0)
        for s in live.values("irqscope_interrupts_total") {
            #expect(Int(s.labels["irq"] ?? "") ?? Int.max <= highest && !(s.labels["name"] ?? "").isEmpty, "\(s.labels)")
        }
        try replayMatchesLive(dir, name: "scale", scrapes: ["scale.metrics", "scale-after.metrics"])
        let scrapes = try String(contentsOfFile: dir + "/scale.scrapes", encoding: .utf8)
        #expect(scrapes.hasSuffix("exit=0\n"), "irqscope-bench scrapes: \(scrapes)")
        let status = { (name: String) in
            ((try? String(contentsOfFile: dir + "/scale.\(name).status", encoding: .utf8)) ?? "").split(separator: "\n").first { $0.hasPrefix("VmRSS") }.map { String($0.split(separator: "\t").last ?? "") } ?? "?"
        }
        return "irqs=\(irqs) possible=\(kernel["possible"] ?? "?") slots=\(slots) BPF maps \(Int(total)) bytes (irq_counts \(Int(countsBytes)); \(Int(cappedCounts)) at 1024 slots)"
            + " RSS irqscope \(status("irqscope")) node_exporter \(status("node_exporter"))\n" + scrapes
    }

    /// A file of key=value lines.
    static func keyValues(_ path: String) throws -> [String: String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").reduce(into: [:]) { out, line in
            out.merge(fields(line)) { $1 }
        }
    }
}
