import IrqscopeDecode

/// One event as a JSON object: the schema `irqscope trace --json` and `replay --json` print.
public enum EventJSON {
    public static func object(_ e: Event, guest: String?, startNs: UInt64) -> JSON {
        var fields: [(String, JSON)] = [
            ("time_ns", .uint(e.timeNs &- startNs)),
            ("event", .string(e.kind.name)),
            ("pid", .uint(UInt64(e.tgid))),
            ("tid", .uint(UInt64(e.pid))),
            ("comm", .string(e.comm)),
            ("cpu", .uint(UInt64(e.cpu))),
        ]
        if let guest { fields.append(("guest", .string(guest))) }
        if let device = e.device { fields.append(("device", .string(device))) }
        if let irq = e.irq { fields.append(("irq", .int(Int64(irq)))) }
        if hasResult(e.kind) {
            fields.append(("result", .int(e.result)))
            if e.result < 0 { fields.append(("errno", .string(Errno.name(result: e.result)))) }
            if case .vfioSetIRQs(let s) = e.kind, e.result < 0, let why = s.harmlessFailure(errno: Errno.of(result: e.result)) {
                fields.append(("harmless", .string(why)))
            }
        }
        if e.source != .tracepoint { fields.append(("source", .string(e.source.name))) }
        fields += details(e.kind)
        return .object(fields)
    }

    static func hasResult(_ kind: Event.Kind) -> Bool {
        switch kind {
        case .msixEnable, .msixAdd, .msiAlloc, .irteAlloc, .irteActivate, .irtePosted, .requestIRQ, .vfioSetIRQs,
             .vectorReserve, .vectorAlloc, .irqAlloc: true
        default: false
        }
    }

    static func details(_ kind: Event.Kind) -> [(String, JSON)] {
        switch kind {
        case .msixEnable(let min, let max, let flags):
            [("min_vectors", .int(Int64(min))), ("max_vectors", .int(Int64(max))), ("flags", .uint(UInt64(flags)))]
        case .msixAdd(let requested, let allocated):
            [("index_requested", requested == UInt32.max ? .string("any") : .uint(UInt64(requested))),
             ("index", JSON.optional(allocated) { .int(Int64($0)) })]
        case .msixDisable, .irteDeactivate, .firstInterrupt:
            []
        case .msiAlloc(let r), .msiFree(let r):
            [("count", .uint(UInt64(r.count))), ("first", JSON.optional(r.first) { .uint(UInt64($0)) }),
             ("last", JSON.optional(r.last) { .uint(UInt64($0)) })]
        case .irteAlloc(let count, let index):
            [("count", .uint(UInt64(count))), ("msi_index", JSON.optional(index) { .uint(UInt64($0)) })]
        case .unhandled(let count):
            [("count", .uint(count))]
        case .irteFree(let count), .irqFree(let count):
            [("count", .uint(UInt64(count)))]
        case .irqAlloc(let count, let index):
            [("count", .uint(UInt64(count))), ("msi_index", JSON.optional(index) { .uint(UInt64($0)) })]
        case .irteActivate(let reserve):
            [("reserve", .bool(reserve))]
        case .irtePosted(let posted):
            [("posted", .bool(posted))]
        case .piUpdate(let vcpu, let gsi, let gvec, let set):
            [("vcpu", JSON.optional(vcpu) { .uint(UInt64($0)) }), ("gsi", .uint(UInt64(gsi))),
             ("guest_vector", .uint(UInt64(gvec))), ("set", .bool(set))]
        case .requestIRQ(let name, let flags):
            [("name", .string(name)), ("flags", .uint(flags))]
        case .freeIRQ(let name, let interrupts):
            [("name", .string(name))] + (interrupts.map { [("interrupts_since_attach", JSON.uint($0))] } ?? [])
        case .vfioSetIRQs(let s):
            [("index", .string(["intx", "msi", "msix", "err", "req", "none"][safe: Int(s.index)] ?? String(s.index))),
             ("action", .string(s.actionName)),
             ("start", .uint(UInt64(s.start))), ("count", .uint(UInt64(s.count))), ("flags", .uint(UInt64(s.flags)))]
        case .vectorReserve(let managed):
            [("managed", .bool(managed))]
        case .vectorAlloc(let vector, let reserved, let managed):
            [("vector", .uint(UInt64(vector))), ("from_reservation", .bool(reserved)), ("managed", .bool(managed))]
        case .vectorActivate(let a), .vectorDeactivate(let a):
            [("managed", .bool(a.managed)), ("can_reserve", .bool(a.canReserve)), ("reserve", .bool(a.reserve))]
        case .vectorTeardown(let managed, let had):
            [("managed", .bool(managed)), ("had_reservation", .bool(had))]
        case .vectorConfig(let vector, let cpu, let dest):
            [("vector", .uint(UInt64(vector))), ("cpu_target", .uint(UInt64(cpu))), ("apic_destination", .uint(UInt64(dest)))]
        case .matrix(let m):
            [("tracepoint", .string(m.op.tracepoint)), ("bit", JSON.optional(m.bit) { .int(Int64($0)) }),
             ("global_available", .uint(UInt64(m.globalAvailable))), ("global_reserved", .uint(UInt64(m.globalReserved))),
             ("total_allocated", .uint(UInt64(m.totalAllocated)))]
                + (m.perCPU.map { c in [("matrix_cpu", .uint(UInt64(c.cpu))), ("available", .uint(UInt64(c.available))),
                                        ("allocated", .uint(UInt64(c.allocated))), ("managed", .uint(UInt64(c.managed)))] } ?? [])
        }
    }
}
