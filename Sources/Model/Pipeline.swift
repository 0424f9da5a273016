import IrqscopeDecode

/// The one way events, annotations and counter snapshots become a model, for serve, trace,
/// replay and the lab checks alike: an event is named (whose device, whose guest) before it is
/// applied, because a free removes what says whose it was.
public struct Pipeline: Sendable {
    public private(set) var model = HostModel()
    /// Kept only when asked (trace, replay): a long-running exporter must not remember every
    /// vector ever seen.
    public private(set) var lifecycles: Lifecycles?
    /// The VMM's unmasks against the host's requests (trace, replay): kept with `lifecycles`.
    public private(set) var unmasks: GuestUnmasks?
    /// Devices whose driver has been looked up: a device without one is not asked again per event.
    private var lookedUp: Set<String> = []
    /// Keep an exited VMM's devices: a summary wants them; metrics drop them as a live exporter does.
    public var keepExited: Bool

    public init(lifecycles: Bool, keepExited: Bool) {
        self.lifecycles = lifecycles ? Lifecycles() : nil
        unmasks = lifecycles ? GuestUnmasks() : nil
        self.keepExited = keepExited
    }

    /// An event, named as it was when it happened.
    public struct Step: Sendable {
        public var event: Event
        public var guest: String?
        public var device: String?
        /// The guest unmask this event completed (a request_irq), or the VMM step's own.
        public var unmask: GuestUnmasks.Unmask?
    }

    /// A step of the VMM, named by the device it names.
    public struct VMMShown: Sendable {
        public var step: VMMStep
        public var guest: String?
        public var device: String?
        public var unmask: GuestUnmasks.Unmask?
    }

    /// What live naming reads from the host (/proc, sysfs); replay has the answers in the
    /// recording instead.
    public struct Lookup: Sendable {
        public var driver: @Sendable (_ address: String) -> String?
        public var intx: @Sendable (_ address: String) -> Int?
        /// The handlers on a legacy line, comma-joined as /sys/kernel/irq/N/actions has them.
        public var lineActions: @Sendable (_ irq: Int) -> String
        public var holdsVFIO: @Sendable (_ tgid: UInt32) -> Bool
        public var identify: @Sendable (_ tgid: UInt32, _ comm: String) -> ProcessIdentity

        public init(driver: @escaping @Sendable (String) -> String?, intx: @escaping @Sendable (String) -> Int?,
                    lineActions: @escaping @Sendable (Int) -> String,
                    holdsVFIO: @escaping @Sendable (UInt32) -> Bool,
                    identify: @escaping @Sendable (UInt32, String) -> ProcessIdentity) {
            self.driver = driver
            self.intx = intx
            self.lineActions = lineActions
            self.holdsVFIO = holdsVFIO
            self.identify = identify
        }
    }

    /// Live: looks up what the event introduces (a device's driver, the VMM behind a VFIO call),
    /// applies it, and returns it to be recorded ahead of the event, so a replay names the event
    /// the same way. Only what the model does not know yet is looked up.
    public mutating func lookUp(_ event: Event, with host: Lookup) -> [Annotation] {
        var found: [Annotation] = []
        if let address = event.device, !lookedUp.contains(address) || event.kind == .msixDisable {
            let driver = host.driver(address)
            if event.kind == .msixDisable {
                // whether the window that opens can show a loss: only a line with a handler fires
                let intx = host.intx(address)
                found.append(.device(address: address, driver: driver, intx: intx, lineActions: intx.map(host.lineActions) ?? ""))
            } else if model.drivers[address] != driver || !lookedUp.contains(address) {
                found.append(.device(address: address, driver: driver, intx: host.intx(address)))
            }
        }
        if model.processes[event.tgid] == nil {
            let vfio: Bool
            switch event.kind {
            case .vfioSetIRQs: vfio = true
            case .requestIRQ(let name, _): vfio = IRQName(name).isVFIO
            default: vfio = event.kind.isProcessCall && host.holdsVFIO(event.tgid)
            }
            if vfio { found.append(.process(host.identify(event.tgid, event.comm))) }
        }
        for a in found { apply(a) }
        return found
    }

    public mutating func apply(_ event: Event) -> Step {
        let device = model.device(of: event)
        let named = model.guestName(of: event)
        model.apply(event)
        lifecycles?.apply(event, device: device)
        let unmask = unmasks?.apply(event)
        return Step(event: event, guest: named ?? model.guestName(of: event), device: device, unmask: unmask)
    }

    public mutating func undecodable() { model.noteUndecodable() }

    /// The processes the model holds state for that are gone, by `alive`: each is applied as an
    /// exit and returned, to be recorded.
    public mutating func exits(alive: (UInt32) -> Bool) -> [Annotation] {
        let gone = model.trackedProcesses.sorted().filter { !alive($0) }.map { Annotation.exit(tgid: $0) }
        for a in gone { apply(a) }
        return gone
    }

    /// A look at the kernel counters, and the annotation to record for it: a scrape's look
    /// always (replay must see what a scrape saw), a dated look only when counts moved (trace
    /// looks ten times a second).
    public mutating func look(_ snapshot: DeliverySnapshot, irqs: [Int: IRQInfo], at: UInt64?) -> Annotation? {
        let fired = deliver(snapshot, irqs: irqs, at: at)
        guard at == nil || !fired.isEmpty else { return nil }
        return .delivery(.init(snapshot: snapshot, live: irqs.keys.sorted(), at: at))
    }

    /// A look at the kernel counters. `irqs`: what sysfs says exists now (live), or the irqs a
    /// recording says were live. Returns, for a dated look (trace's), the irqs that counted
    /// interrupts since the previous look.
    @discardableResult
    public mutating func deliver(_ snapshot: DeliverySnapshot, irqs: [Int: IRQInfo], at: UInt64?) -> [Int] {
        let before = model.kernel.irqs
        model.update(snapshot, irqs: irqs)
        guard at != nil else { return [] }
        return snapshot.irqs.filter { $0.value.interrupts > (before[$0.key]?.interrupts ?? 0) }.map(\.key).sorted()
    }

    /// Applies an annotation, live or recorded.
    public mutating func apply(_ annotation: Annotation) {
        switch annotation {
        case .process(let identity):
            model.note(process: identity)
        case .device(let address, let driver, let intx, let lineActions):
            lookedUp.insert(address)
            model.note(driver: driver, of: address)
            if let intx { model.note(line: intx, of: address) }
            if let lineActions { model.note(lineWatched: !lineActions.isEmpty, of: address) }
        case .delivery(let d):
            // a recording may repeat an irq: keep one
            deliver(d.snapshot, irqs: Dictionary(d.live.map { ($0, IRQInfo(name: "")) }, uniquingKeysWith: { a, _ in a }), at: d.at)
        case .present(let p):
            model.seed(p)
        case .exit(let tgid):
            if !keepExited { model.processExited(tgid) }
        case .vmmStep(let step):
            _ = apply(step)
        case .meta, .scrape, .end:
            break
        }
    }

    public mutating func apply(_ step: VMMStep) -> VMMShown {
        let device = step.line.device
        let owner = device.flatMap { model.devices.devices[$0]?.owner }
        return VMMShown(step: step, guest: owner.map(model.guestName(owner:)), device: device, unmask: unmasks?.apply(step))
    }

    /// A recording's entry; the step when it is an event.
    public mutating func play(_ entry: Recording.Entry) -> Step? {
        switch entry {
        case .event(let e): return apply(e)
        case .annotation(let a): apply(a); return nil
        }
    }
}
