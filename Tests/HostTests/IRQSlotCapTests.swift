import Foundation
import Testing
import TestSupport

extension Host {
    /// `--bpf.max-irq-slots` below the irq the disk interrupts on: those interrupts are in no
    /// per-irq series but in irqscope_interrupts_untracked_total, as many as /proc/interrupts
    /// counted on the irqs beyond the cap.
    @Suite struct IRQSlotCap {
        @Test func irqsBeyondTheCapAreCountedUntracked() throws {
            let load = try DiskLoad()
            defer { load.stop() }
            let p0 = try procInterrupts()
            sleep(1)
            let busiest = try procInterrupts().max { a, b in
                a.value - (p0[a.key] ?? 0) < b.value - (p0[b.key] ?? 0)
            }!.key
            // the largest slot count that leaves the busiest irq out
            var cap = 32
            while cap * 2 <= busiest { cap *= 2 }
            try #require(busiest >= cap, "the busiest irq (\(busiest)) is below the smallest cap, 32: nothing to leave out")

            let before = try procInterrupts()
            let (server, port) = try HostEnv.serve(["--bpf.max-irq-slots=\(cap)"])
            defer { _ = server.stop() }
            let attached = try procInterrupts()
            sleep(2)
            let loaded = try procInterrupts()
            let m = try HostEnv.scrape(port)
            let after = try procInterrupts()
            func beyond(_ a: [Int: UInt64], _ b: [Int: UInt64]) -> Double {
                Double(b.filter { $0.key >= cap }.reduce(0) { $0 + $1.value - (a[$1.key] ?? 0) })
            }
            let untracked = try #require(m.value("irqscope_interrupts_untracked_total"))
            let cpus = Double(ProcessInfo.processInfo.activeProcessorCount)
            #expect(beyond(attached, loaded) > 1000, "the disk load raised only \(beyond(attached, loaded)) interrupts beyond irq \(cap - 1)")
            // every interrupt the kernel counted beyond the cap while attached (but those still
            // in a handler on some CPU), none before irqscope started
            #expect(untracked >= beyond(attached, loaded) - cpus && untracked <= beyond(before, after),
                    "untracked \(untracked); /proc/interrupts beyond irq \(cap - 1): \(beyond(attached, loaded)) while attached, \(beyond(before, after)) in all")
            let tracked = m.values("irqscope_interrupts_total").compactMap { Int($0.labels["irq"] ?? "") }
            #expect(tracked.allSatisfy { $0 < cap }, "per-irq series beyond the cap: \(tracked.filter { $0 >= cap })")

            let probes = try httpGet("http://127.0.0.1:\(port)/probes")
            let json = try JSONSerialization.jsonObject(with: Data(probes.body.utf8)) as? [String: Any] ?? [:]
            let slots = (json["kernel"] as? [String: Any])?["irq slots"] as? String ?? ""
            #expect(slots.hasPrefix("\(cap) (irqs above \(cap - 1) are counted as untracked); capped by --bpf.max-irq-slots"), "\(slots)")
        }
    }
}
