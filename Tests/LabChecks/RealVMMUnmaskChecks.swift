import Foundation
import Testing
import TestSupport

/// Issue 12 §3: the whole path in one trace, guest -> VMM -> host. `trace --qemu-trace` merged
/// QEMU's own trace into its timeline; the lab's wrapper copied QEMU's log bytes on their way to
/// irqscope (realvmm.qemu-trace.log, read here with a parser of its own), and the kernel's side is
/// the host's request_irq events.
extension LabChecks {
    public static func realVMMUnmasks(_ dir: String) throws {
        let info = fields(Substring(try String(contentsOfFile: dir + "/realvmm.info", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let device = try #require(info["device"], "realvmm.info names no device")

        // QEMU's own lines: "TID@SEC.USEC:NAME ARGS"
        var truth: [(wallUs: UInt64, name: String, args: String)] = []
        for line in try String(contentsOfFile: dir + "/realvmm.qemu-trace.log", encoding: .utf8).split(separator: "\n") {
            guard let at = line.firstIndex(of: "@"), let colon = line.firstIndex(of: ":"), at < colon else {
                Issue.record("QEMU's log line without a timestamp: \(line.prefix(100))")
                continue
            }
            let stamp = line[line.index(after: at)..<colon].split(separator: ".")
            let rest = line[line.index(after: colon)...]
            let name = rest.prefix { $0 != " " }
            guard stamp.count == 2, let s = UInt64(stamp[0]), let us = UInt64(stamp[1]) else { Issue.record("bad stamp: \(line.prefix(100))"); continue }
            truth.append((s * 1_000_000 + us, String(name), rest.dropFirst(name.count).trimmingCharacters(in: .whitespaces)))
        }
        #expect(truth.contains { $0.name == "vfio_msix_vector_do_use" }, "QEMU's log holds no vfio_msix_vector_do_use")

        let objects = try String(contentsOfFile: dir + "/realvmm.trace.json", encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        let steps = objects.filter { $0["event"] as? String == "vmm_step" }

        // every line QEMU wrote is in the trace, in order, with its stamp
        #expect(steps.count == truth.count, "trace: \(steps.count) QEMU steps; QEMU's log: \(truth.count) lines")
        for (i, (s, t)) in zip(steps, truth).enumerated() {
            let same = s["step"] as? String == t.name && s["args"] as? String == t.args && (s["wall_us"] as? NSNumber)?.uint64Value == t.wallUs
            #expect(same, "QEMU step #\(i): trace \(s["step"] ?? "-") \(s["args"] ?? "-") @\(s["wall_us"] ?? "-"); QEMU \(t.name) \(t.args) @\(t.wallUs)")
            if !same { break }
        }

        // the guest's side before the host's: for every vector, its first use by QEMU comes before
        // the first request_irq of vfio-msix[N](device) (a clock conversion off by more than the
        // latency, either way, fails this or the bound below)
        func time(_ o: [String: Any]) -> UInt64 { (o["time_ns"] as? NSNumber)?.uint64Value ?? 0 }
        let uses = steps.filter { $0["step"] as? String == "vfio_msix_vector_do_use" && $0["device"] as? String == device }
        let vectors = Set(uses.compactMap { $0["vector"] as? Int })
        let requests = objects.filter { $0["event"] as? String == "request_irq" && ($0["result"] as? Int) == 0 }
        func requestsOf(_ v: Int) -> [[String: Any]] { requests.filter { $0["name"] as? String == "vfio-msix[\(v)](\(device))" } }
        #expect(!vectors.isEmpty, "no vfio_msix_vector_do_use of \(device) in the trace")
        for v in vectors.sorted() {
            let firstUse = uses.filter { $0["vector"] as? Int == v }.map(time).min()!
            let firstRequest = requestsOf(v).map(time).min()
            #expect(firstRequest.map { firstUse <= $0 } ?? false,
                    "vector \(v): QEMU used it at \(firstUse) ns, the host's first request_irq at \(firstRequest.map(String.init) ?? "none")")
        }

        // the summary's guest-unmask -> host-ready latency per vector, recomputed here from the
        // events: the first request_irq of the vector after each use, before QEMU's next step on it
        let summary = try #require(objects.last?["summary"] as? [String: Any], "no summary")
        let table = try #require(summary["guest_unmasks"] as? [[String: Any]], "the summary has no guest_unmasks")
        var expected: [String] = []
        for u in uses {
            let v = u["vector"] as! Int, at = time(u)
            let next = steps.filter { ($0["vector"] as? Int) == v && $0["device"] as? String == device && time($0) > at }.map(time).min()
            let r = requestsOf(v).map(time).filter { t in t >= at && (next.map { t < $0 } ?? true) }.min()
            expected.append("\(v)@\(at):\(r.map { String($0 - at) } ?? "none")")
        }
        let reported = table.filter { $0["device"] as? String == device }.map { row in
            "\(row["vector"] as? Int ?? -1)@\((row["unmasked_ns"] as? NSNumber)?.uint64Value ?? 0):\((row["latency_ns"] as? NSNumber).map { "\($0.uint64Value)" } ?? "none")"
        }
        #expect(reported.sorted() == expected.sorted(), "summary \(reported.sorted()); from the events \(expected.sorted())")
        for v in vectors {
            let latencies = table.filter { $0["device"] as? String == device && $0["vector"] as? Int == v }.compactMap { ($0["latency_ns"] as? NSNumber)?.uint64Value }
            #expect(!latencies.isEmpty, "vector \(v): no guest-unmask -> host-ready latency in the summary")
            #expect(latencies.allSatisfy { $0 < 1_000_000_000 }, "vector \(v): latencies \(latencies) ns (over a second: the clocks disagree)")
        }

        // replay: the same steps and the same table from the recording
        let replay = try String(contentsOfFile: dir + "/realvmm.replay.txt", encoding: .utf8)
        let replayed = replay.split(separator: "\n").filter { $0.contains(" qemu ") && $0.contains("vfio_") }
        #expect(replayed.count == truth.count, "replay shows \(replayed.count) QEMU steps; QEMU's log has \(truth.count)")
        #expect(replay.contains("Guest unmask"), "replay prints no guest-unmask table")
    }
}
