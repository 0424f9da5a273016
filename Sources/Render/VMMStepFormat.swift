import IrqscopeDecode
import IrqscopeModel

/// The VMM's own steps (trace --qemu-trace) in trace's and replay's output, and the latency from a
/// guest's unmask to the host's request_irq, in the event lines and the summary.
extension TraceFormat {
    public func line(_ s: Pipeline.VMMShown) -> String {
        let detail = s.step.line.name + (s.step.line.args.isEmpty ? "" : " " + s.step.line.args)
            + (s.unmask.map { u in paint("  host ready \(latency(u)) later (irq \(u.irq.map(String.init) ?? "?"))", "36") } ?? "")
        return "\(seconds(s.step.at))  \(pad(s.guest ?? "-", 12)) \(pad(s.device ?? "-", 13)) \(pad("qemu", 17)) \(detail)"
    }

    /// Appended to a request_irq line that completes a guest unmask.
    public func suffix(_ u: GuestUnmasks.Unmask) -> String {
        paint("  guest unmasked vector \(u.vector) \(latency(u)) before", "36")
    }

    func latency(_ u: GuestUnmasks.Unmask) -> String {
        u.latency.map { "\(format2(Double($0) / 1e6)) ms" } ?? "-"
    }
}

public enum VMMStepJSON {
    public static func object(_ s: Pipeline.VMMShown, startNs: UInt64) -> JSON {
        var fields: [(String, JSON)] = [("time_ns", .uint(s.step.at &- startNs)), ("event", .string("vmm_step")),
                                        ("vmm", .string("qemu")), ("step", .string(s.step.line.name))]
        if let tid = s.step.line.tid { fields.append(("tid", .uint(UInt64(tid)))) }
        if let guest = s.guest { fields.append(("guest", .string(guest))) }
        if let device = s.device { fields.append(("device", .string(device))) }
        if let vector = s.step.line.vector { fields.append(("vector", .int(Int64(vector)))) }
        fields.append(("args", .string(s.step.line.args)))
        if let wall = s.step.line.wallUs { fields.append(("wall_us", .uint(wall))) }
        if let u = s.unmask { fields += unmask(u) }
        return .object(fields)
    }

    /// A request_irq object that completes a guest unmask gets its latency.
    public static func adding(_ u: GuestUnmasks.Unmask?, to object: JSON) -> JSON {
        guard let u, case .object(let fields) = object else { return object }
        return .object(fields + [("unmask_vector", .int(Int64(u.vector)))] + unmask(u))
    }

    static func unmask(_ u: GuestUnmasks.Unmask) -> [(String, JSON)] {
        [("unmask_latency_ns", JSON.optional(u.latency) { .uint($0) })]
    }
}

/// The summary's table of unmasks: per vector, when the guest unmasked it and when the host was ready.
public struct UnmaskSummary: Sendable {
    public var unmasks: [GuestUnmasks.Unmask]
    public var guests: [String: String]

    /// `include`: whether a device belongs in the summary (as the trace's own filter says).
    public init(_ unmasks: GuestUnmasks, model: HostModel, include: (String) -> Bool) {
        self.unmasks = unmasks.unmasks.filter { include($0.device) }
        guests = Dictionary(self.unmasks.map { u in
            (u.device, model.devices.devices[u.device]?.owner.map(model.guestName(owner:)) ?? "-")
        }, uniquingKeysWith: { a, _ in a })
    }

    public func text(_ f: TraceFormat) -> String {
        guard !unmasks.isEmpty else { return "" }
        var rows = [["GUEST", "DEVICE", "VECTOR", "GUEST UNMASK", "HOST READY", "IRQ", "LATENCY"]]
        for u in unmasks {
            rows.append([guests[u.device] ?? "-", u.device, String(u.vector), f.seconds(u.unmasked),
                         u.ready.map { f.seconds($0) } ?? "-", u.irq.map(String.init) ?? "-", f.latency(u)])
        }
        return "\nGuest unmask (QEMU's vfio_msix_vector_do_use, to the µs) -> host ready (request_irq returned)\n" + columns(rows)
    }

    public var json: JSON {
        .array(unmasks.map { u in
            .object([("guest", .string(guests[u.device] ?? "-")), ("device", .string(u.device)), ("vector", .int(Int64(u.vector))),
                     ("unmasked_ns", .uint(u.unmasked)), ("ready_ns", JSON.optional(u.ready) { .uint($0) }),
                     ("irq", JSON.optional(u.irq) { .int(Int64($0)) }), ("latency_ns", JSON.optional(u.latency) { .uint($0) })])
        })
    }

    /// The trace summary's object with this table added as `guest_unmasks`.
    public func adding(to summary: JSON, startNs: UInt64) -> JSON {
        guard !unmasks.isEmpty, case .object(let outer) = summary, let (key, inner) = outer.first, case .object(let fields) = inner else { return summary }
        let relative = UnmaskSummary(unmasks: unmasks.map { u in
            var u = u
            u.unmasked &-= startNs
            u.ready = u.ready.map { $0 &- startNs }
            return u
        }, guests: guests)
        return .object([(key, .object(fields + [("guest_unmasks", relative.json)]))] + outer.dropFirst())
    }

    init(unmasks: [GuestUnmasks.Unmask], guests: [String: String]) {
        self.unmasks = unmasks
        self.guests = guests
    }
}
