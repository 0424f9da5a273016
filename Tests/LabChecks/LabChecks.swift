import Foundation
import IrqscopeDecode
import IrqscopeHost
import IrqscopeModel
import IrqscopeRender
import Testing
import TestSupport

/// The lab's checks, run on the results of a lab boot (Tests/LabTests) and on the fixtures kept
/// from one (Tests/UnitTests). Ground truth is what the kernel said in the guest (msi_irqs,
/// irq actions) and what the VMM program knows it did; irqscope's side is the metrics it served
/// live and the recording it made, replayed here.
public enum LabChecks {
    // MARK: - Scenario 1 and 4: host drivers

    /// Per device, irqscope's allocated/requested vectors and IRTEs equal the kernel's; nvme's
    /// free-and-reallocate cycle is seen; with `kprobes`, every function hook ran as a kprobe.
    public static func hostDrivers(_ dir: String, name: String, kprobes: Bool) throws {
        let truth = try Truth.read(dir + "/\(name).truth")
        let live = try parseExposition(String(contentsOfFile: dir + "/\(name).metrics", encoding: .utf8))
        #expect(truth.count == 3, "expected nvme, e1000e and virtio-net in \(dir)")
        for d in truth {
            #expect(d.allocated > 0, "\(d.device) (\(d.driver)) holds no vectors: the scenario did not run")
            let labels = ["device": d.device]
            #expect(live.value("irqscope_msix_vectors", labels.merging(["state": "allocated"]) { $1 }) == Double(d.allocated),
                    "\(name) \(d.device) \(d.driver): allocated vectors")
            #expect(live.value("irqscope_msix_vectors", labels.merging(["state": "requested"]) { $1 }) == Double(d.requested),
                    "\(name) \(d.device) \(d.driver): requested vectors")
            #expect(live.value("irqscope_irte_entries", labels) == Double(d.allocated), "\(name) \(d.device): IRTEs")
            #expect(live.values("irqscope_msix_vectors", where: labels).first?.labels["driver"] == d.driver)
            #expect(live.values("irqscope_msix_vectors", where: labels).first?.labels["guest"] == "")
        }
        let (model, events) = try replay(dir + "/\(name).rec")
        let nvme = try #require(truth.first { $0.driver == "nvme" })
        let cycles = model.devices.devices[nvme.device]?.cycles ?? 0
        #expect(cycles >= 1, "nvme's free-and-reallocate cycle not seen")
        let nvmeEvents = events.filter { $0.device == nvme.device }.map(\.kind.name)
        let disable = nvmeEvents.firstIndex(of: "msix_disable")
        #expect(disable != nil && nvmeEvents[(disable ?? 0)...].contains("msix_enable"), "nvme: no disable followed by enable")
        try promtoolPassed(dir + "/\(name).metrics.promtool")
        try replayMatchesLive(dir, name: name, scrapes: ["\(name).metrics"])
        // the metrics above were read after the exporter dropped its capabilities
        let serveLog = try String(contentsOfFile: dir + "/\(name).serve.log", encoding: .utf8)
        #expect(serveLog.contains("capabilities dropped"), "\(name): no capability drop logged")
        if kprobes { try attachedOnlyWith(dir + "/\(name).doctor.json", mechanisms: ["kprobe", "kretprobe", "tp_btf"]) }
        // `irqscope doctor`, run while the exporter served, attached what the exporter reports on /probes
        if FileManager.default.fileExists(atPath: dir + "/\(name).cli-doctor.json") {
            let cli = try hooks(dir + "/\(name).cli-doctor.json"), served = try hooks(dir + "/\(name).doctor.json")
            #expect(cli.count >= 20 && Set(cli.keys) == Set(served.keys), "doctor's hooks \(cli.keys.sorted()), /probes' \(served.keys.sorted())")
            for (hook, h) in cli {
                let s = served[hook] ?? [:]
                #expect(h["state"] as? String == s["state"] as? String && h["mechanism"] as? String == s["mechanism"] as? String,
                        "\(hook): doctor \(h), /probes \(s)")
            }
        }
    }

    // MARK: - Tracepoints only (a kernel without fentry and kprobes)

    /// The families that need function hooks are reported unavailable, each with its reason,
    /// in the metrics and the log; the tracepoint families still count.
    public static func tracepointsOnly(_ dir: String) throws {
        let live = try parseExposition(String(contentsOfFile: dir + "/tracepoints-only.metrics", encoding: .utf8))
        let log = try String(contentsOfFile: dir + "/tracepoints-only.serve.log", encoding: .utf8)
        for family in ["irq_delivery", "vector_matrix", "vector_domain"] {
            #expect(live.value("irqscope_probe_family_available", ["family": family]) == 1, "\(family) should attach as a tracepoint")
        }
        for family in ["msix_enable", "msi_irqs", "request_irq", "free_irq", "irte_alloc"] {
            #expect(live.value("irqscope_probe_family_available", ["family": family]) == 0, "\(family) cannot attach without function hooks")
            let line = log.split(separator: "\n").first { $0.contains("family=\(family) ") && $0.contains("probe family unavailable") }
            #expect(line?.contains("disabled by --attach") == true, "\(family): unavailability not explained in the log")
        }
        #expect((live.value("irqscope_interrupts_total", ["irq": "0"]) ?? -1) >= 0)
        try promtoolPassed(dir + "/tracepoints-only.metrics.promtool")
        try attachedOnlyWith(dir + "/tracepoints-only.doctor.json", mechanisms: ["tp_btf", "raw_tp"], atLeast: 20)
    }

    // MARK: - Scenario 2: one guest through VFIO

    public static func vfio(_ dir: String) throws {
        let vmm = try VMMLog.read(dir + "/vfio.vmm.log")
        let n = vmm.vectors
        #expect(n == vmm.msixCount && n > 1, "the VMM enabled \(n) of \(vmm.msixCount) vectors")
        #expect(vmm.failures == 0)
        let truth = try #require(try Truth.read(dir + "/vfio.truth").first)
        #expect(truth.allocated == n && truth.requested == n, "kernel: \(truth)")
        let live = try parseExposition(String(contentsOfFile: dir + "/vfio.metrics", encoding: .utf8))
        let labels = ["device": truth.device, "guest": "alpha"]
        #expect(live.value("irqscope_msix_vectors", labels.merging(["state": "allocated"]) { $1 }) == Double(n))
        #expect(live.value("irqscope_msix_vectors", labels.merging(["state": "requested"]) { $1 }) == Double(n))
        #expect(live.value("irqscope_irte_entries", labels) == Double(n))
        #expect(live.value("irqscope_guest_info", ["guest": "alpha", "pid": String(vmm.pid), "source": "qemu-name"]) == 1)
        // an exporter started while alpha held its vectors found them and their owner at start
        // (lab runs from stop 20 on; older fixtures have no late exporter)
        if let text = try? String(contentsOfFile: dir + "/vfio.late.metrics", encoding: .utf8) {
            let late = try parseExposition(text)
            #expect(late.value("irqscope_msix_vectors", labels.merging(["state": "allocated"]) { $1 }) == Double(n), "late exporter: allocated")
            #expect(late.value("irqscope_msix_vectors", labels.merging(["state": "requested"]) { $1 }) == Double(n), "late exporter: requested")
            #expect(late.value("irqscope_guest_info", ["guest": "alpha", "pid": String(vmm.pid), "source": "qemu-name"]) == 1, "late exporter: guest")
            // what it did not see stays unknown or zero, never guessed
            #expect(late.value("irqscope_irte_entries", labels) == nil, "late exporter: IRTEs it never saw allocated")
            #expect(late.values("irqscope_msix_grows_total", where: ["guest": "alpha"]).allSatisfy { $0.value == 0 }, "late exporter: grows it never saw")
        }

        // while the VMM held its vectors (first scrape), and over the whole run
        let (held, _) = try replay(dir + "/vfio.rec", untilScrape: 1)
        let (_, events) = try replay(dir + "/vfio.rec")
        let mine = events.filter { $0.tgid == vmm.pid }
        let device = held.devices.devices[truth.device]
        if vmm.noresize {
            // NORESIZE (6.1): every new vector is a disable and a re-enable of the whole table
            #expect(device?.cycles == UInt64(n), "disable/re-enable cycles")
            #expect(device?.grows[.reenable] == UInt64(n - 1))
            #expect(device?.grows[.dynamic] == nil)
            #expect(live.value("irqscope_msix_disabled_windows_total", labels) == Double(n - 1))
            #expect(live.value("irqscope_msix_grows_total", labels.merging(["mode": "reenable"]) { $1 }) == Double(n - 1))
        } else {
            // dynamic MSI-X (6.12): vectors 1..N-1 added one by one, MSI-X never switched off
            #expect(device?.grows[.dynamic] == UInt64(n - 1), "dynamic adds")
            #expect(device?.grows[.reenable] == nil)
            #expect(device?.cycles == 0)
            let lastAdd = mine.lastIndex { $0.kind.name == "msix_add" } ?? 0
            #expect(!mine[..<lastAdd].contains { $0.kind == .msixDisable }, "MSI-X was disabled during dynamic growth")
            #expect(live.value("irqscope_msix_grows_total", labels.merging(["mode": "dynamic"]) { $1 }) == Double(n - 1))
        }
        // each IRTE is allocated before the request_irq of its vector, in the VMM's own context
        var irte: Set<Int32> = []
        var requests = 0
        for e in mine {
            switch e.kind {
            case .irteAlloc(let count, _) where e.result == 0:
                for k in 0..<Int32(count) { irte.insert(e.irq! + k) }
            case .irteFree(let count):
                for k in 0..<Int32(count) { irte.remove(e.irq! + k) }
            case .requestIRQ(let name, _) where name.hasPrefix("vfio-msix") && e.result == 0:
                requests += 1
                #expect(irte.contains(e.irq!), "request_irq(\(e.irq!)) before its IRTE was allocated")
            default: break
            }
        }
        #expect(requests == (vmm.noresize ? n * (n + 1) / 2 : n), "request_irq calls")
        // everything released at the end: every irq, request and IRTE the VMM took was given back
        var irqs: Set<Int32> = [], requested: Set<Int32> = []
        irte = []
        for e in mine {
            switch e.kind {
            case .irqAlloc(let count, _) where e.result == 0: for k in 0..<Int32(count) { irqs.insert(e.irq! + k) }
            case .irqFree(let count): for k in 0..<Int32(count) { irqs.remove(e.irq! + k) }
            case .irteAlloc(let count, _) where e.result == 0: for k in 0..<Int32(count) { irte.insert(e.irq! + k) }
            case .irteFree(let count): for k in 0..<Int32(count) { irte.remove(e.irq! + k) }
            case .requestIRQ(let name, _) where name.hasPrefix("vfio-msix") && e.result == 0: requested.insert(e.irq!)
            case .freeIRQ(let name, _) where name.hasPrefix("vfio-msix"): requested.remove(e.irq!)
            default: break
            }
        }
        #expect(irqs.isEmpty && requested.isEmpty && irte.isEmpty,
                "left after exit: irqs \(irqs.sorted()), requested \(requested.sorted()), IRTEs \(irte.sorted())")
        let after = try parseExposition(String(contentsOfFile: dir + "/vfio-after.metrics", encoding: .utf8))
        #expect(after.values("irqscope_msix_vectors", where: ["guest": "alpha"]).isEmpty, "stale series after exit")
        #expect(try Truth.read(dir + "/vfio-after.truth").first?.allocated == 0)
        try promtoolPassed(dir + "/vfio.metrics.promtool")
        try replayMatchesLive(dir, name: "vfio", scrapes: ["vfio.metrics", "vfio-after.metrics"])
    }

    // MARK: - irqscope trace around a VMM

    /// The trace caught the whole sequence the VMM drove, in the VMM's context, and its summary
    /// agrees with what the exporter served for the same run.
    public static func trace(_ dir: String) throws {
        let vmm = try VMMLog.read(dir + "/trace.vmm.log")
        let n = vmm.vectors
        #expect(n == 5, "the VMM enabled \(n) vectors")
        let err = try String(contentsOfFile: dir + "/trace.err", encoding: .utf8)
        #expect(err.hasSuffix("exit=0\n"), "trace: \(err)")
        let lines = try String(contentsOfFile: dir + "/trace.json", encoding: .utf8).split(separator: "\n")
        let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        let events = objects.dropLast()
        let summary = try #require(objects.last?["summary"] as? [String: Any], "no summary object at the end")
        for e in events {
            for key in ["time_ns", "event", "pid", "comm"] { #expect(e[key] != nil, "event without \(key): \(e)") }
        }
        let requests = events.filter { $0["event"] as? String == "request_irq" && ($0["name"] as? String ?? "").hasPrefix("vfio-msix") }
        #expect(requests.count == (vmm.noresize ? n * (n + 1) / 2 : n), "request_irq events")
        #expect(requests.allSatisfy { $0["pid"] as? Int == vmm.pid && $0["guest"] as? String == "gamma" })
        // vfio_set_irqs where doctor had vfio_pci_set_irqs_ioctl (not on 5.10: see kernelCapabilities);
        // the vfio scenario's doctor ran in the same boot, with the same modules loaded
        let setIRQs = (try? hooks(dir + "/vfio.doctor.json"))?["vfio_pci_set_irqs_ioctl"]?["state"] as? String != "unavailable"
        for name in ["vfio_set_irqs", "msix_enable", "irq_alloc", "irte_alloc", "free_irq", "msix_disable"] where setIRQs || name != "vfio_set_irqs" {
            #expect(events.contains { $0["event"] as? String == name }, "no \(name) event in the trace")
        }
        #expect(summary["irte_allocated"] as? String == "at MSI allocation")
        let device = try #require((summary["devices"] as? [[String: Any]])?.first { $0["guest"] as? String == "gamma" })
        // what the VMM did, and the trace's own summary of it
        #expect(device["grows_dynamic"] as? Int == vmm.dynamicAdds && device["cycles"] as? Int == vmm.cycles
                && device["grows_reenable"] as? Int == vmm.liveReenables && device["windows"] as? Int == vmm.liveReenables,
                "trace summary \(device) vs the VMM: cycles=\(vmm.cycles) dynamic_adds=\(vmm.dynamicAdds) live re-enables=\(vmm.liveReenables)")
        let live = try parseExposition(String(contentsOfFile: dir + "/trace.metrics", encoding: .utf8))
        let labels = ["guest": "gamma"]
        #expect(Double(device["grows_dynamic"] as? Int ?? -1) == live.value("irqscope_msix_grows_total", labels.merging(["mode": "dynamic"]) { $1 }))
        #expect(Double(device["grows_reenable"] as? Int ?? -1) == live.value("irqscope_msix_grows_total", labels.merging(["mode": "reenable"]) { $1 }))
        #expect(Double(device["windows"] as? Int ?? -1) == live.value("irqscope_msix_disabled_windows_total", labels))
        #expect(live.value("irqscope_msix_vectors", labels.merging(["state": "requested"]) { $1 }) == Double(n))
        let replay = try String(contentsOfFile: dir + "/trace.replay.txt", encoding: .utf8)
        #expect(replay.hasSuffix("exit=0\n") && replay.contains("Verdict:"), "replay of the trace recording")
        if vmm.raised > 0 {
            // the VMM made each vector fire once: in the vector table of the replay (DEVICE INDEX IRQ
            // ALLOCATED IRTE REQUESTED CPU-VECTOR(2 words) FIRST-IRQ FREED), the last generation of
            // vectors, the ones that were live, has a first interrupt
            let rows = replay.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
                .filter { $0.count == 10 && $0[0].hasPrefix("0000:") && $0[5] != "-" }
            let fired = rows.filter { $0[8] != "-" }
            #expect(fired.count >= n, "vectors with a first interrupt: \(fired.count) of \(n)")
        }
    }

    /// This build's pipeline over the trace's own recording: the VMM's steps are gamma's, and the
    /// model holds what the VMM did (what `trace` printed live is checked by `trace`).
    public static func traceRecording(_ dir: String) throws {
        let vmm = try VMMLog.read(dir + "/trace.vmm.log")
        var pipeline = Pipeline(lifecycles: true, keepExited: true)
        let steps = try readRecording(dir + "/trace-cli.rec").compactMap { pipeline.play($0) }
        let calls = steps.filter { $0.event.tgid == UInt32(vmm.pid) && $0.event.kind.isProcessCall }
        #expect(!calls.isEmpty && calls.allSatisfy { $0.guest == "gamma" }, "VMM calls not gamma's: \(calls.filter { $0.guest != "gamma" }.count) of \(calls.count)")
        let device = try #require(pipeline.model.devices.devices.values.first { $0.owner == UInt32(vmm.pid) }, "no device of the VMM")
        let n = vmm.vectors
        let requests = calls.filter { if case .requestIRQ(let name, _) = $0.event.kind { name.hasPrefix("vfio-msix") && $0.event.result == 0 } else { false } }
        #expect(requests.count == (vmm.noresize ? n * (n + 1) / 2 : n), "\(requests.count) vfio-msix requests for \(n) vectors")
        #expect(device.grows[.dynamic, default: 0] == UInt64(vmm.dynamicAdds) && device.cycles == UInt64(vmm.cycles)
                && device.grows[.reenable, default: 0] == UInt64(vmm.liveReenables) && device.windows.count == UInt64(vmm.liveReenables),
                "replayed \(device.address): cycles \(device.cycles) grows \(device.grows) windows \(device.windows.count); the VMM: cycles=\(vmm.cycles) dynamic_adds=\(vmm.dynamicAdds) live re-enables=\(vmm.liveReenables)")
    }

    /// The kernel's first-interrupt reports against what each vector's VMM read from its eventfd:
    /// a vector index that received interrupts has a generation with a first interrupt, one that
    /// received none has none, and every first interrupt lies within its generation's life,
    /// after its CPU vector was taken.
    public static func firstInterrupts(recording: String, device: String, vmm: VMMLog) throws -> String {
        var pipeline = Pipeline(lifecycles: true, keepExited: true)
        for entry in try readRecording(recording) { _ = pipeline.play(entry) }
        let vectors = (pipeline.lifecycles?.vectors ?? []).filter { $0.device == device }
        #expect(!vmm.receivedByIndex.isEmpty, "the VMM log has no per-vector counts")
        for (index, received) in vmm.receivedByIndex.sorted(by: { $0.key < $1.key }) {
            let firsts = vectors.filter { $0.msiIndex == UInt32(index) }.compactMap(\.firstInterrupt)
            #expect(received > 0 ? !firsts.isEmpty : firsts.isEmpty,
                    "\(device) index \(index): the VMM received \(received), irqscope saw \(firsts.count) first interrupts")
        }
        for v in vectors {
            guard let first = v.firstInterrupt else { continue }
            #expect(v.cpuVector.map { $0.at <= first } ?? false, "\(device) irq \(v.irq): first interrupt \(first) before its CPU vector \(v.cpuVector?.at ?? 0)")
            #expect(v.freed.map { first <= $0 } ?? true, "\(device) irq \(v.irq): first interrupt \(first) after it was freed \(v.freed ?? 0)")
        }
        let latencies = vectors.compactMap { v in v.requested.flatMap { r in v.firstInterrupt.map { Double(Int64(bitPattern: $0 &- r)) / 1e6 } } }
        return "\(vectors.filter { $0.firstInterrupt != nil }.count) of \(vectors.count) generations with a first interrupt"
            + (latencies.isEmpty ? "" : String(format: " (request_irq to first: %.3f to %.3f ms)", latencies.min()!, latencies.max()!))
    }

    /// Alpha with its line unshared: no handler on the line, so the kernel keeps it masked and
    /// what alpha's device raises while MSI-X is off leaves no trace. irqscope cannot prove a
    /// loss there and must not claim one; it says the windows were blind instead.
    @discardableResult
    public static func unshared(_ dir: String) throws -> String {
        let alpha = try VMMLog.read(dir + "/unshared.alpha.log")
        let live = try parseExposition(String(contentsOfFile: dir + "/unshared.metrics", encoding: .utf8))
        let line = try String(contentsOfFile: dir + "/unshared.line", encoding: .utf8)
        #expect(fields(line[...])["actions"] == "", "the line still has a handler: \(line)")
        let labels = ["guest": "alpha"]
        let windows = live.value("irqscope_msix_disabled_windows_total", labels) ?? -1
        let blind = live.value("irqscope_msix_blind_windows_total", labels) ?? -1
        let lost = live.value("irqscope_interrupts_lost_min_total", labels.merging(["cause": "line_while_msix_off"]) { $1 }) ?? -1
        #expect(windows == Double(alpha.liveReenables) && blind == windows,
                "alpha: \(alpha.liveReenables) live re-enables; irqscope windows \(windows), blind \(blind)")
        #expect(lost == 0 && (live.value("irqscope_msix_loss_windows_total", labels) ?? -1) == 0, "a loss claimed on an unwatched line: \(lost)")
        if alpha.noresize { #expect(alpha.windowRaised > 0, "the VMM raised nothing inside its windows") }
        try promtoolPassed(dir + "/unshared.metrics.promtool")
        return "unshared line: alpha raised \(alpha.windowRaised) interrupts inside \(alpha.liveReenables) MSI-X-off windows and missed \(alpha.raised - alpha.received); irqscope: lost_min \(Int(lost)), \(Int(blind)) of \(Int(windows)) windows blind"
    }

    // MARK: - Two guests at once

    /// Every series lands on the right guest; what each VMM received equals the interrupts
    /// irqscope counted for its device; alpha's resize windows (6.1) show up as losses on the
    /// legacy line it shares with a host device. Returns what it found, for the README.
    @discardableResult
    public static func guests(_ dir: String) throws -> String {
        let alpha = try VMMLog.read(dir + "/guests.alpha.log"), beta = try VMMLog.read(dir + "/guests.beta.log")
        let truth = try Truth.read(dir + "/guests.truth")
        let live = try parseExposition(String(contentsOfFile: dir + "/guests.metrics", encoding: .utf8))
        var findings: [String] = []
        for (name, vmm, device) in [("alpha", alpha, "0000:00:06.0"), ("beta", beta, "0000:00:05.0")] {
            let t = try #require(truth.first { $0.device == device })
            #expect(vmm.vectors == 5 && t.requested == 5, "\(name): \(vmm.vectors) vectors, kernel \(t)")
            // every per-device series (those with a guest label) names the right guest
            let mine = live.samples.filter { $0.labels["device"] == device && $0.labels["guest"] != nil }
            #expect(!mine.isEmpty && mine.allSatisfy { $0.labels["guest"] == name },
                    "\(device): \(mine.filter { $0.labels["guest"] != name }.map(\.name)) not guest=\(name)")
            #expect(live.value("irqscope_msix_vectors", ["guest": name, "device": device, "state": "requested"]) == 5)
            #expect(live.value("irqscope_irte_entries", ["guest": name, "device": device]) == 5)
            #expect(live.value("irqscope_guest_info", ["guest": name, "pid": String(vmm.pid), "source": "qemu-name"]) == 1)
            let delivered = live.value("irqscope_device_interrupts_total", ["guest": name, "device": device])
            #expect(vmm.raised > 0 && delivered == Double(vmm.received),
                    "\(name): VMM raised \(vmm.raised), received \(vmm.received); irqscope delivered \(delivered ?? -1)")
            findings.append("\(name): raised \(vmm.raised), received \(vmm.received), irqscope delivered \(Int(delivered ?? -1))")
            findings.append("\(name): " + (try firstInterrupts(recording: dir + "/guests.rec", device: device, vmm: vmm)))
        }
        // the shared legacy line: irqscope's unhandled count is the kernel's, and what happened in
        // alpha's windows is charged to alpha
        // "line=22 shared_with=BDF" then /proc/irq/22/spurious: "count N unhandled N last_unhandled N ms"
        let text = try String(contentsOfFile: dir + "/guests.line", encoding: .utf8)
        let irq = try #require(fields(text[...])["line"])
        let words = text.split(whereSeparator: \.isWhitespace)
        let kernelUnhandled = words.firstIndex(of: "unhandled").flatMap { Double(words[$0 + 1]) } ?? -1
        let kernelCount = words.firstIndex(of: "count").flatMap { Double(words[$0 + 1]) } ?? -1
        let unhandled = live.value("irqscope_interrupts_unhandled_total", ["irq": irq]) ?? -1
        // The kernel's count is not a plain total: note_interrupt() restarts it at 1 when 100 ms
        // pass without an unhandled interrupt (and at 0 every 100000 interrupts, as it does
        // `count`). A busy host stretches a TCG guest's bursts past 100 ms (seen on 5.10:
        // irqscope 41234, kernel 40690 of count 41240). So: equal where no restart happened,
        // in any case at least the kernel's figure and at most every interrupt on the line.
        // At 100000 interrupts note_interrupt() restarts both counts, and with more than 99900 of
        // them unhandled it disables the line ("nobody cared"; the host device sharing it then
        // gets its interrupts only from the kernel's 100 ms poll). Seen on 6.1: count 0 unhandled 0,
        // irqscope 100019 (the polls' handler runs are counted too).
        let restarted = unhandled > kernelCount
        if restarted {
            #expect(unhandled >= 99_900, "line \(irq): irqscope unhandled \(unhandled) above the kernel's count \(kernelCount) without a restart at 100000")
        } else {
            #expect(unhandled >= kernelUnhandled && unhandled <= kernelCount,
                    "line \(irq): irqscope unhandled \(unhandled), /proc/irq/\(irq)/spurious unhandled \(kernelUnhandled) of count \(kernelCount)")
        }
        // Loss never overstated: alpha's VMM raised one interrupt inside each of its windows and
        // counted what arrived; beta's re-enables raised none inside theirs.
        let lost = live.value("irqscope_interrupts_lost_min_total", ["guest": "alpha", "cause": "line_while_msix_off"]) ?? 0
        let lossWindows = live.value("irqscope_msix_loss_windows_total", ["guest": "alpha"]) ?? 0
        let refires = live.value("irqscope_line_unhandled_in_windows_total", ["guest": "alpha"]) ?? 0
        if alpha.noresize {
            #expect(alpha.windowRaised > 0)
            #expect(lost <= Double(alpha.windowRaised) && lost <= Double(alpha.raised - alpha.received),
                    "alpha: irqscope says at least \(lost) lost; the VMM raised \(alpha.windowRaised) inside windows and missed \(alpha.raised - alpha.received)")
            // More than 99,900 unhandled of 100,000 and the kernel disables the line ("nobody
            // cared"; 5.10 under TCG refires ~25,000 times per window): a window after that leaves
            // no trace on it, and irqscope does not see the disable. Then only a window before it
            // is sure to show evidence; never more than were raised in.
            let console = (try? String(contentsOfFile: dir + "/console.log", encoding: .utf8)) ?? ""
            if console.contains("Disabling IRQ #\(irq)\n") || console.contains("Disabling IRQ #\(irq)\r") {
                #expect(lossWindows >= 1 && lossWindows <= Double(alpha.windowRaised), "alpha raised in \(alpha.windowRaised) windows, irqscope saw evidence in \(lossWindows)")
                findings.append("the kernel disabled line \(irq) as nobody cared: evidence in \(Int(lossWindows)) of alpha's \(alpha.windowRaised) windows")
            } else {
                #expect(lossWindows >= Double(alpha.windowRaised), "alpha raised in \(alpha.windowRaised) windows, irqscope saw evidence in \(lossWindows)")
            }
        } else {
            #expect(lost == 0 && lossWindows == 0, "no window on the dynamic path, yet \(lost) lost in \(lossWindows) windows")
        }
        // the shared line had a handler in every window: none was blind
        #expect((live.value("irqscope_msix_blind_windows_total", ["guest": "alpha"]) ?? -1) == 0, "alpha's windows on a shared line counted blind")
        #expect((live.value("irqscope_interrupts_lost_min_total", ["guest": "beta", "cause": "line_while_msix_off"]) ?? 0) == 0
                && (live.value("irqscope_msix_loss_windows_total", ["guest": "beta"]) ?? 0) == 0, "beta raised nothing inside its windows")
        if restarted { findings.append("the kernel's spurious-interrupt check restarted line \(irq)'s counts (at 100000: disabled as 'nobody cared' when more than 99900 were unhandled)") }
        findings.append("alpha raised \(alpha.windowRaised) interrupts inside \(alpha.noresize ? alpha.vectors - 1 : 0) MSI-X-off windows and missed \(alpha.raised - alpha.received); irqscope proved at least \(Int(lost)) lost, in \(Int(lossWindows)) windows; the shared line \(irq) refired \(Int(refires)) times unhandled in them (kernel: \(Int(kernelUnhandled)) unhandled)")
        // a second exporter with a one-page ring buffer dropped events and said so; the normal one did not
        if let small = try? parseExposition(String(contentsOfFile: dir + "/guests.drops.metrics", encoding: .utf8)) {
            let dropped = small.value("irqscope_events_dropped_total") ?? -1
            #expect(dropped > 0, "the one-page ring buffer dropped nothing, or did not say so")
            // its records wrap the page's end all the time: each must still decode whole
            #expect((small.value("irqscope_events_received_total") ?? 0) > 0 && small.value("irqscope_events_undecodable_total") == 0,
                    "one-page ring: \(small.value("irqscope_events_received_total") ?? -1) received, \(small.value("irqscope_events_undecodable_total") ?? -1) undecodable")
            #expect(live.value("irqscope_events_dropped_total") == 0)
            // the fill is served since stop 20 (fixtures kept before it have none)
            if let size = live.value("irqscope_events_ring_bytes") {
                let peak = live.value("irqscope_events_ring_peak_bytes") ?? -1
                #expect(peak >= 0 && peak < size, "ring buffer \(size) bytes, peak fill \(peak)")
                findings.append("a one-page ring buffer dropped \(Int(dropped)) events, counted; the default \(Int(size) >> 10) KiB buffer dropped 0, its fill peaked at \(Int(peak)) bytes when read")
            } else {
                findings.append("a one-page ring buffer dropped \(Int(dropped)) events, counted; the default buffer dropped 0")
            }
        }
        // beta grew by disable and re-enable, as QEMU before 8.2 does, even where dynamic MSI-X exists
        if beta.cycles > 0 {
            #expect(live.value("irqscope_msix_grows_total", ["guest": "beta", "mode": "reenable"]) == Double(beta.vectors - 1))
        }
        // both guests gone afterwards
        let after = try parseExposition(String(contentsOfFile: dir + "/guests-after.metrics", encoding: .utf8))
        #expect(after.values("irqscope_guest_info").isEmpty && after.values("irqscope_msix_vectors", where: ["guest": "alpha"]).isEmpty)
        try promtoolPassed(dir + "/guests.metrics.promtool")
        try replayMatchesLive(dir, name: "guests", scrapes: ["guests.metrics", "guests-after.metrics"])
        return findings.joined(separator: "\n")
    }

    // MARK: - Scenario 3: host vector exhaustion

    public static func exhaustion(_ dir: String) throws {
        let vmm = try VMMLog.read(dir + "/exhaustion.vmm.log")
        #expect(vmm.failures > 0, "the host never ran out (\(vmm.vectors) vectors enabled)")
        let live = try parseExposition(String(contentsOfFile: dir + "/exhaustion.metrics", encoding: .utf8))
        let truth = try #require(try Truth.read(dir + "/exhaustion.truth").first)
        for (errno, count) in vmm.failureErrnos {
            #expect(live.value("irqscope_request_irq_failures_total",
                               ["guest": "hog", "device": truth.device, "errno": Errno.name(Int32(errno))]) == Double(count),
                    "\(count) failures with \(Errno.name(Int32(errno))) by the VMM")
        }
        #expect(live.value("irqscope_msix_vectors", ["guest": "hog", "state": "requested"]) == Double(truth.requested))
        // one CPU: its vector space is what ran out, and the vector domain said so
        let refused = live.values("irqscope_vector_space_failures_total", where: ["errno": "ENOSPC"]).map(\.value).reduce(0, +)
        #expect(refused >= Double(vmm.failures), "vector domain refusals \(refused) < VMM failures \(vmm.failures)")
        if !vmm.noresize {
            // dynamic MSI-X keeps the vectors it got: the CPU is still full when we look
            #expect(live.value("irqscope_cpu_vectors_available", ["cpu": "0"]) == 0, "CPU 0 still has free vectors")
            #expect(live.value("irqscope_vector_space_available") == 0)
        }
        try promtoolPassed(dir + "/exhaustion.metrics.promtool")
        try replayMatchesLive(dir, name: "exhaustion", scrapes: ["exhaustion.metrics"])
    }

    // MARK: - Kernel matrix: what each kernel has, and which IOMMU remapped

    /// The IOMMU a boot ran with (the lab writes `iommu`: intel or amd) remapped every interrupt
    /// irqscope saw allocated: each recording of the boot holds IRTE allocations, all from that
    /// IOMMU's `*_irq_remapping_alloc`, none from the other's; doctor had that hook attached.
    public static func interruptRemapping(_ dir: String) throws {
        let iommu = try String(contentsOfFile: dir + "/iommu", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let (expected, hook): (EventSource, String) = iommu == "amd" ? (.amdIR, "irq_remapping_alloc") : (.intelIR, "intel_irq_remapping_alloc")
        #expect(["intel", "amd"].contains(iommu), "\(dir)/iommu: \(iommu)")
        // the exporters' recordings (NAME.rec beside NAME.serve.log)
        let recordings = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".serve.log") }
            .map { String($0.dropLast(".serve.log".count)) + ".rec" }
            .filter { FileManager.default.fileExists(atPath: dir + "/" + $0) }.sorted()
        #expect(!recordings.isEmpty, "no recordings in \(dir)")
        for rec in recordings {
            let (_, events) = try replay(dir + "/" + rec)
            var bySource: [String: Int] = [:]
            for e in events { if case .irteAlloc = e.kind, e.result == 0 { bySource[e.source.name, default: 0] += 1 } }
            // tracepoints-only attaches no function hooks: nothing to see there
            if rec.hasPrefix("tracepoints-only") { #expect(bySource.isEmpty); continue }
            #expect((bySource[expected.name] ?? 0) > 0 && bySource.count == 1,
                    "\(rec) on \(iommu) IR: IRTE allocations by source \(bySource)")
        }
        for doctor in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".doctor.json") })
            where !doctor.hasPrefix("tracepoints-only") {
            let h = try hooks(dir + "/" + doctor)[hook]
            #expect(h?["state"] as? String == "attached", "\(doctor): \(hook) \(h ?? [:])")
        }
    }

    /// The kernel's major and minor version, from the `kernel` file the lab writes (uname -r).
    public static func kernelVersion(_ dir: String) throws -> (Int, Int) {
        let release = try String(contentsOfFile: dir + "/kernel", encoding: .utf8)
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { throw ExpositionError(description: "\(dir)/kernel: \(release)") }
        return (parts[0], parts[1])
    }

    /// What doctor says about the hooks a kernel lacks, and how VFIO grows MSI-X there:
    /// - `pci_msix_alloc_irq_at` (dynamic MSI-X) exists from 6.2: attached as a kretprobe there,
    ///   unavailable before, because the symbol is missing;
    /// - `vfio_pci_set_irqs_ioctl` lives in vfio_pci_core from 5.15 and needs module BTF (5.11+)
    ///   for fexit: attached once vfio-pci is loaded there; on 5.10 unavailable, with a reason;
    /// - `bpf_get_func_ret` (5.17) is what irqscope's fexit programs read the return value with:
    ///   before it, value-returning hooks attach as kretprobes and doctor says why not fexit;
    /// - vfio-pci reports MSI-X without NORESIZE (dynamic) from 6.5.
    public static func kernelCapabilities(_ dir: String) throws {
        let version = try kernelVersion(dir)
        let atLeast = { (major: Int, minor: Int) in version >= (major, minor) }
        let host = try hooks(dir + "/hostdrivers.doctor.json")
        let vfio = try hooks(dir + "/vfio.doctor.json")

        let add = try #require(host["pci_msix_alloc_irq_at"])
        if atLeast(6, 2) {
            #expect(add["state"] as? String == "attached", "pci_msix_alloc_irq_at on \(version): \(add)")
        } else {
            #expect(add["state"] as? String == "unavailable" && (add["reason"] as? String ?? "").contains("no such symbol"),
                    "pci_msix_alloc_irq_at on \(version) should be unavailable, missing: \(add)")
        }

        let setIRQs = try #require(vfio["vfio_pci_set_irqs_ioctl"])
        if atLeast(5, 15) {
            #expect(setIRQs["state"] as? String == "attached", "vfio_pci_set_irqs_ioctl on \(version): \(setIRQs)")
        } else {
            #expect(setIRQs["state"] as? String == "unavailable" && !(setIRQs["reason"] as? String ?? "").isEmpty,
                    "vfio_pci_set_irqs_ioctl on \(version) should be unavailable, with a reason: \(setIRQs)")
        }

        // value-returning function hooks: fexit where bpf_get_func_ret exists, else kretprobe, and
        // doctor says why not fexit (the verifier refused helper 184, bpf_get_func_ret)
        for name in ["request_threaded_irq", "free_irq", "msi_domain_alloc", "intel_irq_remapping_alloc", "irq_remapping_alloc"] {
            let h = try #require(host[name], "\(name) missing from doctor on \(version)")
            #expect(h["state"] as? String == "attached", "\(name) on \(version): \(h)")
            if atLeast(5, 17) {
                #expect(h["mechanism"] as? String == "fexit", "\(name) on \(version): \(h)")
            } else {
                let why = h["fallback_because"] as? String ?? ""
                #expect(h["mechanism"] as? String == "kretprobe" && why.hasPrefix("fexit: ") && why.contains("bpf_get_func_ret"),
                        "\(name) on \(version) cannot be fexit, and doctor should say why: \(h)")
            }
        }
        // hooks that only need arguments stay fentry everywhere
        for name in ["msi_domain_free", "intel_irq_remapping_free"] {
            #expect(host[name]?["mechanism"] as? String == "fentry", "\(name) on \(version): \(host[name] ?? [:])")
        }
        // MSI-X enables: __pci_enable_msix_range, or its callers where it is inlined (5.10; doctor
        // then lists it as standby, covered by them)
        let enable = atLeast(5, 11) ? ["__pci_enable_msix_range"] : ["pci_alloc_irq_vectors_affinity", "pci_enable_msix_range"]
        for name in enable {
            #expect(host[name]?["state"] as? String == "attached", "\(name) on \(version): \(host[name] ?? [:])")
        }

        let vmm = try VMMLog.read(dir + "/vfio.vmm.log")
        #expect(vmm.noresize == !atLeast(6, 5), "VFIO MSI-X NORESIZE=\(vmm.noresize) on \(version)")

        // the posture the exporter read from BTF/kallsyms and sysfs, against what VFIO itself told
        // the VMM (NORESIZE) and the IOMMU the lab booted: the vfio exporter started with vfio-pci
        // loaded, so vfio_pci_core's BTF (5.11+) or its absence (5.10: vfio_pci) decides
        let posture = try Self.posture(dir + "/vfio.doctor.json")
        #expect(posture["msix_dynamic"]?.value == (vmm.noresize ? "no" : "yes"),
                "msix_dynamic on \(version): \(posture["msix_dynamic"] ?? ("?", "?")); VFIO said NORESIZE=\(vmm.noresize)")
        try expectRemapping(posture, dir: dir)
    }

    /// doctor's posture lines (`irqscope doctor --json`, serve's /probes): key -> (value, from).
    public static func posture(_ doctorJSON: String) throws -> [String: (value: String, from: String)] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: doctorJSON))) as? [String: Any] ?? [:]
        let lines = json["posture"] as? [String: [String: String]] ?? [:]
        return lines.mapValues { ($0["value"] ?? "", $0["from"] ?? "") }
    }

    /// Remapping is the IOMMU the lab booted with (the `iommu` file); posting is never possible
    /// under QEMU's emulated IOMMUs (its VT-d has no CAP.PI, and the lab's CPU models have
    /// neither APICv nor AVIC, so KVM would not post either).
    static func expectRemapping(_ posture: [String: (value: String, from: String)], dir: String) throws {
        let iommu = try String(contentsOfFile: dir + "/iommu", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(posture["interrupt_remapping"]?.value == iommu, "interrupt_remapping \(posture["interrupt_remapping"] ?? ("?", "?")), lab booted \(iommu)")
        #expect(["no", "unknown"].contains(posture["posted_interrupts"]?.value ?? "missing"),
                "posted_interrupts under QEMU's \(iommu) IOMMU: \(posture["posted_interrupts"] ?? ("?", "?"))")
    }

    /// Per hook name, its doctor --json object.
    static func hooks(_ doctorJSON: String) throws -> [String: [String: Any]] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: doctorJSON))) as? [String: Any] ?? [:]
        var out: [String: [String: Any]] = [:]
        for f in json["families"] as? [[String: Any]] ?? [] {
            for h in f["hooks"] as? [[String: Any]] ?? [] { out[h["name"] as? String ?? ""] = h }
        }
        return out
    }

    // MARK: - Shared

    /// Replaying the recording up to each scrape yields the device and guest metrics served live.
    public static func replayMatchesLive(_ dir: String, name: String, scrapes: [String]) throws {
        for (i, file) in scrapes.enumerated() {
            let (model, _) = try replay(dir + "/\(name).rec", untilScrape: i + 1)
            let replayed = try parseExposition(render(HostMetrics.deviceFamilies(model), format: .prometheusText))
            let live = try parseExposition(String(contentsOfFile: dir + "/\(file)", encoding: .utf8))
            let families = Set(replayed.types.keys)
            func key(_ s: Sample) -> String {
                s.name + "{" + s.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
            }
            let fromLive = live.samples.filter { s in families.contains { s.name == $0 || s.name.hasPrefix($0 + "_") } }
            let a = Dictionary(uniqueKeysWithValues: replayed.samples.map { (key($0), $0.value) })
            let b = Dictionary(uniqueKeysWithValues: fromLive.map { (key($0), $0.value) })
            let differing = Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted()
            let report = differing.prefix(8).map { k in
                "\(k) replay=\(a[k].map { "\($0)" } ?? "absent") live=\(b[k].map { "\($0)" } ?? "absent")"
            }.joined(separator: "; ")
            #expect(differing.isEmpty, "replay of \(name).rec to scrape \(i + 1) differs from \(file): \(report)")
        }
    }

    /// A copy of a fixture directory with its gzipped recordings inflated (fixtures are kept
    /// compressed: a recording is mostly zero padding).
    public static func unpack(_ fixture: String) throws -> String {
        let dir = NSTemporaryDirectory() + "irqscope-fixture-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: fixture, toPath: dir)
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".gz") {
            let r = try run(["gzip", "-d", dir + "/" + file])
            #expect(r.status == 0, "gzip -d \(file): \(r.stderr)")
        }
        return dir
    }

    /// The product's pipeline over a recording, up to a scrape mark: the model the exporter had
    /// when it answered that scrape.
    public static func replay(_ path: String, untilScrape mark: Int? = nil) throws -> (HostModel, [Event]) {
        var pipeline = Pipeline(lifecycles: false, keepExited: false)
        var events: [Event] = []
        for entry in try readRecording(path) {
            if case .annotation(.scrape(let seq)) = entry, seq == mark { return (pipeline.model, events) }
            if let step = pipeline.play(entry) { events.append(step.event) }
        }
        if let mark { throw ExpositionError(description: "\(path) has no scrape mark \(mark)") }
        return (pipeline.model, events)
    }

    /// A whole recording: every writer in the lab stops cleanly, so one cut short or without its
    /// end mark is refused.
    public static func readRecording(_ path: String) throws -> [Recording.Entry] {
        var reader = try RecordingReader(path: path)
        defer { reader.close() }
        var entries: [Recording.Entry] = []
        while let entry = try reader.next() { entries.append(entry) }
        if let incomplete = reader.incomplete {
            throw RecordingError("\(path): \(incomplete)")
        }
        return entries
    }

    static func promtoolPassed(_ path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("exit=0\n"), "promtool check metrics in the guest: \(text)")
    }

    static func attachedOnlyWith(_ doctorJSON: String, mechanisms: Set<String>, atLeast: Int = 21) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: doctorJSON))) as? [String: Any] ?? [:]
        var attached = 0
        for f in json["families"] as? [[String: Any]] ?? [] {
            for h in f["hooks"] as? [[String: Any]] ?? [] where h["state"] as? String == "attached" {
                attached += 1
                #expect(mechanisms.contains(h["mechanism"] as? String ?? ""), "\(h["name"] ?? "?") attached with \(h["mechanism"] ?? "?")")
            }
        }
        #expect(attached >= atLeast)
    }
}

/// One line per device of a guest `truth` file: what the kernel said.
public struct Truth: Sendable, CustomStringConvertible {
    public var device: String
    public var driver: String
    public var allocated: Int
    public var requested: Int
    public var description: String { "\(device) \(driver) allocated=\(allocated) requested=\(requested)" }

    public static func read(_ path: String) throws -> [Truth] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let f = fields(line)
            return Truth(device: f["device"] ?? "", driver: f["driver"] ?? "",
                         allocated: Int(f["allocated"] ?? "") ?? -1, requested: Int(f["requested"] ?? "") ?? -1)
        }
    }
}

/// What the VMM test program says it did.
public struct VMMLog: Sendable {
    public var pid = 0
    public var msixCount = 0
    public var noresize = false
    public var vectors = 0
    public var failures = 0
    public var failureErrnos: [Int: Int] = [:]
    public var cycles = 0
    public var dynamicAdds = 0
    /// Re-enables made to add a vector while others were live: each grows the table, each opens
    /// a window in which MSI-X is off with live vectors.
    public var liveReenables = 0
    public var raised = 0
    public var received = 0
    public var windowRaised = 0
    /// What the VMM read from each vector's eventfd ("vector index=K received=N").
    public var receivedByIndex: [Int: Int] = [:]

    public static func read(_ path: String) throws -> VMMLog {
        var log = VMMLog()
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let f = fields(line)
            if line.hasPrefix("info ") {
                log.pid = Int(f["pid"] ?? "") ?? 0
                log.msixCount = Int(f["msix_count"] ?? "") ?? 0
                log.noresize = f["noresize"] == "1"
            } else if line.hasPrefix("summary ") {
                log.vectors = Int(f["vectors"] ?? "") ?? -1
                log.failures = Int(f["failures"] ?? "") ?? -1
                log.cycles = Int(f["cycles"] ?? "") ?? -1
                log.dynamicAdds = Int(f["dynamic_adds"] ?? "") ?? -1
            } else if line.hasPrefix("step action=reenable ") {
                if f["vector"] != "0" { log.liveReenables += 1 }
            } else if line.hasPrefix("interrupts ") {
                log.raised = Int(f["raised"] ?? "") ?? -1
                log.received = Int(f["received"] ?? "") ?? -1
                log.windowRaised = Int(f["window_raised"] ?? "") ?? -1
            } else if line.hasPrefix("vector "), let k = Int(f["index"] ?? ""), let n = Int(f["received"] ?? "") {
                log.receivedByIndex[k] = n
            } else if line.hasPrefix("failure "), let errno = Int(f["errno"] ?? "") {
                log.failureErrnos[errno, default: 0] += 1
            }
        }
        return log
    }
}

func fields(_ line: Substring) -> [String: String] {
    var out: [String: String] = [:]
    for token in line.split(separator: " ") {
        guard let eq = token.firstIndex(of: "=") else { continue }
        out[String(token[..<eq])] = String(token[token.index(after: eq)...])
    }
    return out
}
