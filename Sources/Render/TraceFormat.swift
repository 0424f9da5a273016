import IrqscopeDecode
import IrqscopeModel

/// `irqscope trace` and `irqscope replay` output: a line per event, then a summary.
public struct TraceFormat: Sendable {
    public var start: UInt64
    public var color: Bool

    public init(start: UInt64, color: Bool) {
        self.start = start
        self.color = color
    }

    func paint(_ s: String, _ code: String) -> String { color ? "\u{1b}[\(code)m\(s)\u{1b}[0m" : s }
    func failed(_ result: Int64) -> String { paint("FAILED \(Errno.name(result: result))", "31") }

    public func seconds(_ t: UInt64) -> String {
        let ns = Int64(bitPattern: t &- start)
        let sign = ns < 0 ? "-" : "+"
        let us = ns.magnitude / 1000 // magnitude: a crafted recording can hold Int64.min
        let frac = String(us % 1_000_000)
        return "\(sign)\(us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)"
    }

    /// One event. `guest` is the owner's name ("host" for host drivers), `device` its PCI address.
    public func line(_ e: Event, guest: String?, device: String?) -> String {
        let irq = e.irq.map { "irq \($0)" } ?? ""
        let detail: String
        switch e.kind {
        case .msixEnable(let min, let max, _):
            detail = e.result > 0 ? "MSI-X on with \(e.result) vectors (asked \(min)-\(max))" : "MSI-X enable (asked \(min)-\(max)) \(failed(e.result))"
        case .msixAdd(let requested, let index):
            detail = e.result > 0
                ? "vector \(index.map(String.init) ?? "?") added to the live table, irq \(e.result)"
                : "add vector \(requested == UInt32.max ? "any" : String(requested)) \(failed(e.result))"
        case .msixDisable:
            detail = paint("MSI-X off", "33")
        case .msiAlloc(let r):
            detail = e.result >= 0 ? "\(r.count) MSI descriptor\(r.count == 1 ? "" : "s")" : "\(r.count) MSI descriptors \(failed(e.result))"
        case .msiFree(let r):
            let index = r.first.map { first in " (MSI index \(first)" + (r.last.map { "-\($0)" } ?? " up") + ")" } ?? ""
            detail = r.count == 0 ? "MSI descriptors freed\(index)" : "MSI descriptors freed\(index): \(irq)\(r.count > 1 ? "+\(r.count - 1)" : ""), \(r.count) irq\(r.count == 1 ? "" : "s")"
        case .irqAlloc(let count, let index):
            detail = "\(irq)\(count > 1 ? "+\(count - 1)" : "") " + (index.map { "for MSI index \($0)" } ?? "allocated") + (e.result < 0 ? " \(failed(e.result))" : "")
        case .irqFree(let count):
            detail = "\(irq)\(count > 1 ? "+\(count - 1)" : "") freed"
        case .irteAlloc(_, let index):
            // no index: the allocation was not for an MSI (an IO-APIC line), or the kernel did not say
            detail = e.result >= 0 ? "IRTE for \(irq)" + (index.map { " (MSI index \($0))" } ?? "") : "IRTE for \(irq) \(failed(e.result))"
        case .irteFree:
            detail = "IRTE for \(irq) freed"
        case .irteActivate(let reserve):
            detail = "IRTE for \(irq) " + (reserve ? "parked on vector 0xef (reservation)" : "programmed with its CPU vector")
        case .irteDeactivate:
            detail = "IRTE for \(irq) cleared"
        case .irtePosted(let posted):
            detail = "\(irq) " + (posted ? "posted straight to a vCPU" : "back to remapped delivery")
        case .piUpdate(let vcpu, let gsi, let gvec, let set):
            detail = "KVM posted interrupt \(set ? "on" : "off"): host \(irq), gsi \(gsi), guest vector \(gvec)" + (vcpu.map { ", vCPU \($0)" } ?? "")
        case .requestIRQ(let name, _):
            detail = "\(irq) \(name)" + (e.result == 0 ? "" : " \(failed(e.result))")
        case .freeIRQ(let name, _):
            detail = "\(irq) \(name) freed"
        case .vfioSetIRQs(let s):
            let failure = e.result == 0 ? "" : " \(failed(e.result))" + (s.harmlessFailure(errno: Errno.of(result: e.result)).map { " (harmless: \($0))" } ?? "")
            detail = "VFIO_DEVICE_SET_IRQS \(s.indexName) \(s.actionName) start=\(s.start) count=\(s.count)" + failure
        case .vectorReserve(let managed):
            detail = e.result == 0 ? "\(irq) vector reserved\(managed ? " (managed)" : ""), no CPU vector yet" : "\(irq) reservation \(failed(e.result))"
        case .vectorAlloc(let vector, _, let managed):
            detail = e.result >= 0 ? "\(irq) CPU vector \(hex(vector))\(managed ? " (managed)" : "")" : "\(irq) CPU vector \(failed(e.result))"
        case .vectorActivate(let a):
            detail = "\(irq) activated\(a.reserve ? " in reservation mode" : "")"
        case .vectorDeactivate:
            detail = "\(irq) deactivated"
        case .vectorTeardown(_, let had):
            detail = "\(irq) torn down\(had ? ", reservation returned" : "")"
        case .vectorConfig(let vector, let cpu, _):
            detail = "\(irq) points at vector \(hex(vector)) on CPU \(cpu)" + (Int(vector) == HostModel.catchAllVector ? " (shutdown vector)" : "")
        case .matrix(let m):
            let cpu = m.perCPU.map { "CPU \($0.cpu): \($0.available) free, \($0.allocated) allocated; " } ?? ""
            detail = "\(cpu)all: \(m.globalAvailable) free, \(m.globalReserved) reserved, \(m.totalAllocated) allocated"
        case .unhandled(let count):
            detail = paint("\(count) unhandled interrupt\(count == 1 ? "" : "s") on \(irq)", "33")
        case .firstInterrupt:
            detail = "\(irq) first interrupt handled (CPU \(e.cpu))"
        }
        return "\(seconds(e.timeNs))  \(pad(guest ?? "-", 12)) \(pad(device ?? "-", 13)) \(pad(e.kind.name, 17)) \(detail)"
    }

    func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

/// What the trace found, per guest and device, and whether it was clean.
public struct TraceSummary: Sendable {
    public struct Row: Sendable {
        public var guest: String
        public var device: String
        public var driver: String
        public var state: Devices.Device
    }

    public var rows: [Row]
    public var lifecycles: [Lifecycles.Vector]
    public var irteTiming: Lifecycles.IRTETiming
    public var seconds: Double

    public init(model: HostModel, lifecycles: Lifecycles, include: (String) -> Bool, seconds: Double) {
        rows = model.devices.devices.values.filter { include($0.address) }.map { d in
            Row(guest: d.owner.map(model.guestName(owner:)) ?? "host", device: d.address,
                driver: model.drivers[d.address] ?? "", state: d)
        }.sorted { ($0.guest, $0.device) < ($1.guest, $1.device) }
        self.lifecycles = lifecycles.vectors.filter { include($0.device) }
        irteTiming = lifecycles.irteTiming
        self.seconds = seconds
    }

    public enum Finding: String, Sendable, CaseIterable {
        case lossy, failure, lost
    }

    /// `--fail-on`'s exit status: the most severe finding asked for (lost 5, failure 4,
    /// lossy 3), else 0.
    public func exitStatus(failOn: Set<Finding>) -> Int32 {
        let hits = failOn.intersection(findings)
        if hits.contains(.lost) { return 5 }
        if hits.contains(.failure) { return 4 }
        if hits.contains(.lossy) { return 3 }
        return 0
    }

    /// What `--fail-on` can act on.
    public var findings: Set<Finding> {
        var out = Set<Finding>()
        for r in rows {
            if r.state.windows.count > 0 { out.insert(.lossy) }
            if !r.state.requestFailures.isEmpty || !r.state.enableFailures.isEmpty { out.insert(.failure) }
            if r.state.lost.values.contains(where: { $0 > 0 }) { out.insert(.lost) }
        }
        return out
    }

    /// `sections`: more tables (QEMU's unmasks), put before the verdict.
    public func text(_ f: TraceFormat, sections: String = "") -> String {
        var out = "\nSummary over \(String(format2(seconds))) s\n"
        guard !rows.isEmpty else {
            return out + "  no device's MSI-X vectors changed.\n\n" + verdict
        }
        let header = ["GUEST", "DEVICE", "DRIVER", "ALLOC peak/end", "REQ peak/end", "IRTE peak/end", "POSTED peak/end",
                      "GROWS dyn/re", "CYCLES", "MSI-X OFF", "FAILURES", "LOST (at least)"]
        var table = [header]
        for r in rows {
            let d = r.state
            let failures = (d.requestFailures.map { "request \(Errno.name($0.key))x\($0.value)" }
                            + d.enableFailures.map { "enable \(Errno.name($0.key))x\($0.value)" }).sorted().joined(separator: " ")
            let lost = d.lost.filter { $0.value > 0 }.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: " ")
            let (peak, now) = (d.peak, d.holdings)
            table.append([r.guest, r.device, r.driver, "\(peak.allocated)/\(now.allocated)", "\(peak.requested)/\(now.requested)",
                          // found at start on a host with an IOMMU: not 0, unknown
                          d.irtesKnown ? "\(peak.irtes)/\(now.irtes)" : "?", d.irtesKnown ? "\(peak.posted)/\(now.posted)" : "?",
                          "\(d.grows[.dynamic] ?? 0)/\(d.grows[.reenable] ?? 0)", String(d.cycles),
                          d.windows.count > 0 ? "\(d.windows.count)x \(format2(d.windows.sum * 1000)) ms" + (d.blindWindows > 0 ? ", \(d.blindWindows) blind" : "") : "-",
                          failures.isEmpty ? "-" : failures, lost.isEmpty ? "-" : lost])
        }
        out += columns(table)
        out += "peak/end: the most the device held at once during the trace / what it held when the trace ended"
            + " (after its VMM exited: what was left behind).\n"
        if rows.contains(where: { $0.state.blindWindows > 0 }) {
            out += "blind: MSI-X-off windows in which a loss could not have been seen (the device's legacy line had no handler, so nothing fired).\n"
        }
        out += "\nIRTEs on this host are allocated \(irteTiming.rawValue)"
        out += irteTiming == .unknown ? " (no IRTE seen: interrupt remapping off, or its probes not attached).\n" : ".\n"
        if !lifecycles.isEmpty {
            out += "\nVectors (times from the start of the trace)\n"
            var v = [["DEVICE", "INDEX", "IRQ", "ALLOCATED", "IRTE", "REQUESTED", "CPU VECTOR", "FIRST IRQ", "FREED"]]
            for l in lifecycles {
                v.append([l.device, l.msiIndex.map(String.init) ?? "-", String(l.irq), t(l.allocated, f), t(l.irte, f),
                          l.requested.map { f.seconds($0) } ?? l.requestFailed.map { "FAILED \(Errno.name($0.errno))" } ?? "-",
                          l.cpuVector.map { "0x\(String($0.vector, radix: 16))@cpu\($0.cpu) \(f.seconds($0.at))" } ?? "-",
                          t(l.firstInterrupt, f), t(l.freed, f)])
            }
            out += columns(v)
        }
        return out + sections + "\n" + verdict
    }

    var verdict: String {
        let found = findings
        guard !found.isEmpty else { return "Verdict: clean: no lossy resize, no failed request, no lost interrupt.\n" }
        return "Verdict: " + Finding.allCases.filter(found.contains).map {
            switch $0 {
            case .lossy: "lossy resizes (MSI-X switched off with live vectors)"
            case .failure: "failed requests (vectors the host could not back)"
            case .lost: "lost interrupts (the host proved at least one)"
            }
        }.joined(separator: "; ") + ".\n"
    }

    public func json() -> JSON {
        .object([("summary", .object([
            ("seconds", .double(seconds)),
            ("irte_allocated", .string(irteTiming.rawValue)),
            ("findings", .array(Finding.allCases.filter { findings.contains($0) }.map { .string($0.rawValue) })),
            ("devices", .array(rows.map { r in
                let d = r.state
                return .object([
                    ("guest", .string(r.guest)), ("device", .string(r.device)), ("driver", .string(r.driver)),
                    ("allocated", .int(Int64(d.vectors.count))), ("requested", .int(Int64(d.requested))),
                    ("irtes", d.irtesKnown ? .int(Int64(d.irtes)) : .null), ("posted", d.irtesKnown ? .int(Int64(d.posted)) : .null),
                    ("peak", .object([("allocated", .int(Int64(d.peak.allocated))), ("requested", .int(Int64(d.peak.requested))),
                                      ("irtes", d.irtesKnown ? .int(Int64(d.peak.irtes)) : .null),
                                      ("posted", d.irtesKnown ? .int(Int64(d.peak.posted)) : .null)])),
                    ("grows_dynamic", .uint(d.grows[.dynamic] ?? 0)), ("grows_reenable", .uint(d.grows[.reenable] ?? 0)),
                    ("cycles", .uint(d.cycles)), ("windows", .uint(d.windows.count)), ("msix_off_seconds", .double(d.windows.sum)),
                    ("request_failures", .object(d.requestFailures.sorted { $0.key < $1.key }.map { (Errno.name($0.key), .uint($0.value)) })),
                    ("enable_failures", .object(d.enableFailures.sorted { $0.key < $1.key }.map { (Errno.name($0.key), .uint($0.value)) })),
                    ("lost_min", .object(d.lost.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.rawValue, .uint($0.value)) })),
                    ("loss_windows", .uint(d.lossWindows)), ("blind_windows", .uint(d.blindWindows)), ("line_unhandled_in_windows", .uint(d.lineUnhandledInWindows)),
                    ("delivered", .uint(d.delivered)),
                ])
            })),
        ]))])
    }

    func t(_ v: UInt64?, _ f: TraceFormat) -> String { v.map { f.seconds($0) } ?? "-" }
}

func format2(_ v: Double) -> String {
    let r = (v * 1000).rounded() / 1000
    return String(r)
}

/// Left-aligned columns separated by two spaces.
func columns(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = Array(repeating: 0, count: first.count)
    for row in rows { for (i, c) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    return rows.map { row in
        row.enumerated().map { i, c in i == row.count - 1 ? c : pad(c, widths[i]) }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}

/// trace's live status line: what the model holds so far.
public struct TraceStatus {
    let model: HostModel
    public init(_ model: HostModel) { self.model = model }

    public func line(shown: Int) -> String {
        let devices = model.devices.devices.values
        let vectors = devices.reduce(0) { $0 + $1.vectors.count }
        let failures = devices.reduce(UInt64(0)) { $0 + $1.requestFailures.values.reduce(0, +) }
        let windows = devices.reduce(UInt64(0)) { $0 + $1.windows.count }
        let lost = devices.reduce(UInt64(0)) { $0 &+ $1.lost.values.reduce(0, &+) }
        return "events \(shown)  devices \(devices.count)  vectors \(vectors)  msix-off windows \(windows)  failed requests \(failures)  lost >= \(lost)"
    }
}
