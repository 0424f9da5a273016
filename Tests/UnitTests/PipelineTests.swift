import Foundation
import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender
import LabChecks
import Synchronization
import Testing
import TestSupport

/// The one pipeline: what live naming asks the host, and that a replay of what it recorded names
/// every event as the live run did.
@Suite struct PipelineTests {
    let nic = "0000:00:06.0", disk = "0000:00:04.0"

    /// A host that knows one VMM (pid 100, "alpha") holding VFIO, and counts every question.
    final class FakeHost: Sendable {
        let asked = Mutex<[String]>([])
        let drivers = Mutex<[String: String]>(["0000:00:06.0": "vfio-pci", "0000:00:04.0": "nvme"])

        var lookup: Pipeline.Lookup {
            Pipeline.Lookup(
                driver: { a in self.asked.withLock { $0.append("driver \(a)") }; return self.drivers.withLock { $0[a] } },
                intx: { a in self.asked.withLock { $0.append("intx \(a)") }; return a == "0000:00:06.0" ? 11 : nil },
                lineActions: { irq in self.asked.withLock { $0.append("actions \(irq)") }; return irq == 11 ? "ahci" : "" },
                holdsVFIO: { t in self.asked.withLock { $0.append("vfio \(t)") }; return t == 100 },
                identify: { t, comm in
                    self.asked.withLock { $0.append("identify \(t)") }
                    return ProcessIdentity(tgid: t, name: t == 100 ? "alpha" : "\(comm)-\(t)", source: t == 100 ? .qemuName : .comm)
                })
        }
    }

    func event(_ kind: Event.Kind, tgid: UInt32, device: String?, irq: Int32? = nil, at: UInt64) -> Event {
        var enabled = false
        if case .msixEnable = kind { enabled = true }
        return Event(timeNs: at, result: enabled ? 1 : 0, tgid: tgid, pid: tgid,
              irq: irq, comm: tgid == 100 ? "qemu" : "kworker", device: device, kind: kind)
    }

    var events: [Event] {
        [event(.msixEnable(minVectors: 1, maxVectors: 1, flags: 0), tgid: 100, device: nic, at: 10),
         event(.irqAlloc(count: 1, msiIndex: 0), tgid: 100, device: nic, irq: 40, at: 11),
         event(.requestIRQ(name: "vfio-msix[0](\(nic))", flags: 0), tgid: 100, device: nic, irq: 40, at: 12),
         event(.msixEnable(minVectors: 1, maxVectors: 1, flags: 0), tgid: 5, device: disk, at: 13),
         event(.requestIRQ(name: "nvme0q0", flags: 0), tgid: 5, device: disk, irq: 41, at: 14),
         event(.vectorConfig(vector: 0x28, cpu: 0, apicDestination: 0), tgid: 5, device: nil, irq: 40, at: 15),
         event(.freeIRQ(name: "vfio-msix[0](\(nic))", interrupts: nil), tgid: 100, device: nic, irq: 40, at: 16),
         event(.msixDisable, tgid: 100, device: nic, at: 17),
         event(.irqFree(count: 1), tgid: 100, device: nic, irq: 40, at: 18)]
    }

    @Test func asksTheHostOnlyWhatItDoesNotKnow() {
        let host = FakeHost()
        var live = Pipeline(lifecycles: true, keepExited: true)
        var recorded: [Annotation] = []
        for e in events {
            recorded += live.lookUp(e, with: host.lookup)
            _ = live.apply(e)
        }
        let asked = host.asked.withLock { $0 }
        // a driver per device, read again when MSI-X is shut down (an unbind and rebind shows there)
        #expect(asked.filter { $0 == "driver \(nic)" }.count == 2 && asked.filter { $0 == "driver \(disk)" }.count == 1, "\(asked)")
        // the VMM is identified once; the kernel thread is asked whether it holds VFIO, not identified
        #expect(asked.filter { $0.hasPrefix("identify") } == ["identify 100"], "\(asked)")
        #expect(recorded.contains(.process(ProcessIdentity(tgid: 100, name: "alpha", source: .qemuName))))
        #expect(recorded.contains(.device(address: nic, driver: "vfio-pci", intx: 11)))
        // at MSI-X shutdown, the handlers on the device's line: whether the window can show a loss
        #expect(recorded.contains(.device(address: nic, driver: "vfio-pci", intx: 11, lineActions: "ahci")))
        #expect(asked.filter { $0.hasPrefix("actions") } == ["actions 11"], "\(asked)")
        #expect(recorded.filter { if case .device = $0 { true } else { false } }.count == 3, "an unchanged driver is not recorded again: \(recorded)")
    }

    /// The recording holds what live naming read, ahead of the event that needed it.
    @Test func aReplayNamesEveryEventAsTheLiveRunDid() {
        let host = FakeHost()
        var live = Pipeline(lifecycles: true, keepExited: true)
        var entries: [Recording.Entry] = []
        var liveSteps: [Pipeline.Step] = []
        for e in events {
            entries += live.lookUp(e, with: host.lookup).map { .annotation($0) }
            entries.append(.event(e))
            liveSteps.append(live.apply(e))
        }
        var replay = Pipeline(lifecycles: true, keepExited: true)
        let replayed = entries.compactMap { replay.play($0) }
        #expect(replayed.map(\.guest) == liveSteps.map(\.guest) && replayed.map(\.device) == liveSteps.map(\.device))
        // what the test knows it did: the VMM's steps are alpha's, the disk's are the host's
        #expect(liveSteps.filter { $0.event.tgid == 100 }.allSatisfy { $0.guest == "alpha" })
        #expect(liveSteps.filter { $0.device == disk }.allSatisfy { $0.guest == "host" })
        #expect(replay.lifecycles?.vectors.map(\.irq) == [40])
    }

    /// A look reports which irqs counted interrupts since the last (trace records it then); a
    /// scrape's look (no time) reports none. First interrupts come from the kernel's own event,
    /// not from looks.
    @Test func looksWithATimeReportWhatCounted() {
        var p = Pipeline(lifecycles: true, keepExited: true)
        _ = p.apply(event(.irqAlloc(count: 1, msiIndex: 0), tgid: 100, device: nic, irq: 40, at: 11))
        #expect(p.deliver(DeliverySnapshot(irqs: [40: IRQCount(interrupts: 0, unhandled: 0)]), irqs: [:], at: 20) == [])
        #expect(p.deliver(DeliverySnapshot(irqs: [40: IRQCount(interrupts: 3, unhandled: 0)]), irqs: [:], at: nil) == [], "an undated look (a scrape) reports nothing")
        #expect(p.deliver(DeliverySnapshot(irqs: [40: IRQCount(interrupts: 4, unhandled: 0)]), irqs: [:], at: 30) == [40])
        #expect(p.lifecycles?.vectors.first?.firstInterrupt == nil)
        _ = p.apply(event(.firstInterrupt, tgid: 0, device: nil, irq: 40, at: 25))
        #expect(p.lifecycles?.vectors.first?.firstInterrupt == 25)
    }

    /// `--fail-on`'s exit status over lab recordings, against what the lab's VMM and sysfs say:
    /// a resize by disable/re-enable with vectors live is lossy (exit 3); vectors allocated but
    /// never requested are failed requests (exit 4).
    @Test(arguments: ["6.1/main/vfio", "6.12/main/vfio", "6.12/exhaustion/exhaustion", "5.10/main/vfio", "7.3/main/vfio"])
    func exitStatusFollowsWhatTheLabSaw(_ fixture: String) throws {
        let dir = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/" + fixture.split(separator: "/").dropLast().joined(separator: "/"))
        let name = String(fixture.split(separator: "/").last!)
        var p = Pipeline(lifecycles: true, keepExited: true)
        var first: UInt64?, last: UInt64 = 0
        for entry in try LabChecks.readRecording("\(dir)/\(name).rec") {
            if let step = p.play(entry) { first = first ?? step.event.timeNs; last = step.event.timeNs }
        }
        let summary = TraceSummary(model: p.model, lifecycles: p.lifecycles!, include: { _ in true },
                                   seconds: Double(last - (first ?? 0)) / 1e9)
        let vmmLog = try String(contentsOfFile: "\(dir)/\(name).vmm.log", encoding: .utf8)
        // re-enabling to add vector 1 or later disables MSI-X with vectors live
        let lossy = vmmLog.split(separator: "\n").contains { $0.hasPrefix("step action=reenable") && !$0.contains("vector=0 ") }
        let truth = try String(contentsOfFile: "\(dir)/\(name).truth", encoding: .utf8)
        let failed = truth.split(separator: "\n").contains { line in
            let f = Dictionary(line.split(separator: " ").compactMap { kv -> (String, String)? in
                let p = kv.split(separator: "=", maxSplits: 1); return p.count == 2 ? (String(p[0]), String(p[1])) : nil }, uniquingKeysWith: { a, _ in a })
            return Int(f["allocated"] ?? "0")! > Int(f["requested"] ?? "0")!
        }
        #expect(summary.exitStatus(failOn: [.lossy]) == (lossy ? 3 : 0), "lossy: VMM log says \(lossy)")
        #expect(summary.exitStatus(failOn: [.failure]) == (failed ? 4 : 0), "failure: sysfs says \(failed)")
        #expect(summary.exitStatus(failOn: [.lossy, .failure]) == (failed ? 4 : lossy ? 3 : 0), "the most severe wins")
        #expect(summary.exitStatus(failOn: []) == 0)
    }
}
