/// What a recording holds besides the kernel's records: what only the recording machine could
/// read (who a process is, a device's driver, the kernel counters at a look) and the marks of a
/// run (its start, a scrape, a process gone). Written as UTF-8 `key=value` lines with a `type`.
public enum Annotation: Sendable, Equatable {
    case meta(kernel: String, irqscope: String)
    case process(ProcessIdentity)
    /// A device's driver (nil: none bound) and its legacy INTx line, read when an event named it;
    /// at an MSI-X disable also the handlers on that line ("" when none, or no line): whether a
    /// loss in the window that opens could be seen at all. nil: not read (older recordings).
    case device(address: String, driver: String?, intx: Int?, lineActions: String? = nil)
    case delivery(Delivery)
    /// A device's MSI/MSI-X irqs as they stood when irqscope started: what was allocated before
    /// it could see the lifecycle events (every device on a host whose exporter restarts).
    case present(Present)
    case exit(tgid: UInt32)
    case scrape(seq: Int)
    /// A line of the VMM's own trace (trace --qemu-trace), dated on the kernel's clock.
    case vmmStep(VMMStep)
    /// The writer stopped cleanly: nothing after it, and nothing missing before it.
    case end

    /// The kernel counters at one look, and which irqs existed then. `at` (monotonic ns) is set
    /// by trace's looks (recorded when counts moved); a scrape's look has none. First interrupts
    /// are the kernel's own events; older recordings dated them by these looks.
    public struct Delivery: Sendable, Equatable {
        public var snapshot: DeliverySnapshot
        public var live: [Int]
        public var at: UInt64?

        public init(snapshot: DeliverySnapshot, live: [Int], at: UInt64? = nil) {
            self.snapshot = snapshot
            self.live = live
            self.at = at
        }
    }

    /// What sysfs and /proc showed of one PCI device at start, once the programs were attached:
    /// anything that changes after the look is an event that follows it. Only what the look can
    /// prove; the rest (the size the table was enabled with, IRTEs where an IOMMU could remap)
    /// stays unknown.
    public struct Present: Sendable, Equatable {
        public enum Mode: String, Sendable { case msi, msix }

        public var address: String
        public var mode: Mode
        /// /sys/bus/pci/devices/BDF/msi_irqs
        public var irqs: [Int]
        /// Of those, the ones with a handler (/sys/kernel/irq/N/actions not empty).
        public var requested: [Int]
        /// Message Control's enable bit of the MSI-X capability in config space; nil: not read
        /// (config space past the header needs CAP_SYS_ADMIN, or no MSI-X capability found).
        public var msixEnabled: Bool?
        /// The process holding the device through VFIO (its group or its cdev open).
        public var owner: UInt32?
        /// The host has no IOMMU (/sys/class/iommu empty): no IRTE held, nothing posted. false:
        /// unknown, as the look cannot tell which vectors an IOMMU remaps.
        public var noRemapping: Bool

        public init(address: String, mode: Mode, irqs: [Int], requested: [Int], msixEnabled: Bool? = nil,
                    owner: UInt32? = nil, noRemapping: Bool = false) {
            self.address = address
            self.mode = mode
            self.irqs = irqs
            self.requested = requested
            self.msixEnabled = msixEnabled
            self.owner = owner
            self.noRemapping = noRemapping
        }
    }
}

extension Annotation {
    public var fields: [(String, String)] {
        switch self {
        case .meta(let kernel, let irqscope):
            return [("type", "meta"), ("kernel", kernel), ("irqscope", irqscope)]
        case .process(let p):
            var f: [(String, String)] = [("type", "process"), ("tgid", String(p.tgid)), ("name", p.name), ("source", p.source.rawValue)]
            if let vmm = p.vmm { f.append(("vmm", vmm)) }
            if let version = p.vmmVersion { f.append(("vmm_version", version)) }
            return f
        case .device(let address, let driver, let intx, let lineActions):
            var f: [(String, String)] = [("type", "device"), ("address", address), ("driver", driver ?? "")]
            if let intx { f.append(("intx", String(intx))) }
            if let lineActions { f.append(("line_actions", lineActions)) }
            return f
        case .delivery(let d):
            let s = d.snapshot
            let irqs: [String] = s.irqs.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.interrupts):\($0.value.unhandled)" }
            let spurious: [String] = s.spurious.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
            var f: [(String, String)] = [("type", "delivery"), ("irqs", irqs.joined(separator: ",")),
                                         ("spurious", spurious.joined(separator: ",")),
                                         ("live", d.live.sorted().map(String.init).joined(separator: ",")),
                                         ("dropped", String(s.eventsDropped)), ("untracked", String(s.untracked)),
                                         ("kretprobe_misses", String(s.kretprobesMissed))]
            if s.ringBytes > 0 { f += [("ring_bytes", String(s.ringBytes)), ("ring_peak", String(s.ringPeakBytes))] }
            if let at = d.at { f.append(("at", String(at))) }
            return f
        case .present(let p):
            var f: [(String, String)] = [("type", "present"), ("address", p.address), ("mode", p.mode.rawValue),
                                         ("irqs", p.irqs.map(String.init).joined(separator: ",")),
                                         ("requested", p.requested.map(String.init).joined(separator: ","))]
            if let enabled = p.msixEnabled { f.append(("msix_enabled", enabled ? "1" : "0")) }
            if let owner = p.owner { f.append(("owner", String(owner))) }
            if p.noRemapping { f.append(("remapping", "none")) }
            return f
        case .exit(let tgid):
            return [("type", "exit"), ("tgid", String(tgid))]
        case .scrape(let seq):
            return [("type", "scrape"), ("seq", String(seq))]
        case .vmmStep(let s):
            return [("type", "vmm_step"), ("at", String(s.at)), ("line", s.line.text)]
        case .end:
            return [("type", "end")]
        }
    }

    /// Strict: a field irqscope writes that is missing or malformed names itself, so a damaged
    /// recording is refused where it is damaged instead of replaying as something else.
    public init(fields f: [String: String]) throws(AnnotationError) {
        func need(_ key: String) throws(AnnotationError) -> String {
            guard let v = f[key] else { throw AnnotationError("\(f["type"] ?? "") annotation without \(key)") }
            return v
        }
        func number<T: FixedWidthInteger>(_ key: String, _: T.Type) throws(AnnotationError) -> T {
            let text = try need(key)
            guard let v = T(text) else { throw AnnotationError("\(f["type"] ?? "") annotation: \(key)=\(text.prefix(40)) is not a number") }
            return v
        }
        switch try need("type") {
        case "meta":
            self = .meta(kernel: f["kernel"] ?? "", irqscope: f["irqscope"] ?? "")
        case "process":
            let text = try need("source")
            guard let source = ProcessIdentity.Source(rawValue: text) else { throw AnnotationError("process annotation: unknown source \(text.prefix(40))") }
            // recordings made before the VMM was read have neither: unknown
            self = .process(ProcessIdentity(tgid: try number("tgid", UInt32.self), name: try need("name"), source: source,
                                            vmm: f["vmm"], vmmVersion: f["vmm_version"]))
        case "device":
            let driver = f["driver"] ?? ""
            self = .device(address: try need("address"), driver: driver.isEmpty ? nil : driver,
                           intx: f["intx"] == nil ? nil : Int(try number("intx", Int32.self)), lineActions: f["line_actions"])
        case "delivery":
            self = .delivery(try Self.delivery(f))
        case "present":
            self = .present(try Self.present(f))
        case "exit":
            self = .exit(tgid: try number("tgid", UInt32.self))
        case "scrape":
            self = .scrape(seq: try number("seq", Int.self))
        case "vmm_step":
            let text = try need("line")
            guard let line = QEMUTraceLine(Substring(text)) else { throw AnnotationError("vmm_step annotation: not a trace line: \(text.prefix(40))") }
            self = .vmmStep(VMMStep(at: try number("at", UInt64.self), line: line))
        case "end":
            self = .end
        case let other:
            throw AnnotationError("unknown annotation type \(other.prefix(40))")
        }
    }

    private static func present(_ f: [String: String]) throws(AnnotationError) -> Present {
        func need(_ key: String) throws(AnnotationError) -> String {
            guard let v = f[key] else { throw AnnotationError("present annotation without \(key)") }
            return v
        }
        func irqs(_ key: String) throws(AnnotationError) -> [Int] {
            var out: [Int] = []
            for item in try need(key).split(separator: ",") {
                guard let irq = Int32(item), irq >= 0 else { throw AnnotationError("present annotation: bad \(key) item \(item.prefix(40))") }
                out.append(Int(irq))
            }
            return out
        }
        let modeText = try need("mode")
        guard let mode = Present.Mode(rawValue: modeText) else { throw AnnotationError("present annotation: unknown mode \(modeText.prefix(40))") }
        var enabled: Bool?
        switch f["msix_enabled"] {
        case nil: enabled = nil
        case "1": enabled = true
        case "0": enabled = false
        case let other?: throw AnnotationError("present annotation: msix_enabled=\(other.prefix(40)) is not 0 or 1")
        }
        var owner: UInt32?
        if let text = f["owner"] {
            guard let tgid = UInt32(text) else { throw AnnotationError("present annotation: owner=\(text.prefix(40)) is not a number") }
            owner = tgid
        }
        return Present(address: try need("address"), mode: mode, irqs: try irqs("irqs"), requested: try irqs("requested"),
                       msixEnabled: enabled, owner: owner, noRemapping: f["remapping"] == "none")
    }

    private static func delivery(_ f: [String: String]) throws(AnnotationError) -> Delivery {
        func items(_ key: String, parts: Int) throws(AnnotationError) -> [[Substring]] {
            var out: [[Substring]] = []
            for item in (f[key] ?? "").split(separator: ",") {
                let p = item.split(separator: ":", omittingEmptySubsequences: false)
                guard p.count == parts else { throw AnnotationError("delivery annotation: bad \(key) item \(item.prefix(40))") }
                out.append(p)
            }
            return out
        }
        func bad(_ key: String, _ item: [Substring]) -> AnnotationError {
            AnnotationError("delivery annotation: bad \(key) item \(item.joined(separator: ":").prefix(40))")
        }
        var s = DeliverySnapshot()
        // irq numbers are the kernel's non-negative int, vectors a byte
        for p in try items("irqs", parts: 3) {
            guard let irq = Int32(p[0]), irq >= 0, let n = UInt64(p[1]), let u = UInt64(p[2]) else { throw bad("irqs", p) }
            s.irqs[Int(irq)] = IRQCount(interrupts: n, unhandled: u)
        }
        for p in try items("spurious", parts: 2) {
            guard let vector = UInt8(p[0]), let n = UInt64(p[1]) else { throw bad("spurious", p) }
            s.spurious[Int(vector)] = n
        }
        var live: [Int] = []
        for p in try items("live", parts: 1) {
            guard let irq = Int32(p[0]), irq >= 0 else { throw bad("live", p) }
            live.append(Int(irq))
        }
        func count(_ key: String) throws(AnnotationError) -> UInt64 {
            guard let text = f[key] else { return 0 }
            guard let v = UInt64(text) else { throw AnnotationError("delivery annotation: \(key)=\(text.prefix(40)) is not a number") }
            return v
        }
        s.eventsDropped = try count("dropped")
        s.untracked = try count("untracked")
        s.kretprobesMissed = try count("kretprobe_misses")
        s.ringBytes = try count("ring_bytes")
        s.ringPeakBytes = try count("ring_peak")
        var at: UInt64?
        if f["at"] != nil { at = try count("at") }
        return Delivery(snapshot: s, live: live, at: at)
    }
}

public struct AnnotationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
