import IrqscopeDecode

/// PCI devices and their MSI-X vectors as the lifecycle events describe them: which irqs a
/// device holds, which are requested, which have an IRTE, how its vector table grew, and the
/// windows in which MSI-X was off.
public struct Devices: Sendable {
    public enum GrowMode: String, Sendable, CaseIterable {
        /// A vector added to a live table (pci_msix_alloc_irq_at): nothing switched off.
        case dynamic
        /// MSI-X disabled and enabled again with more vectors: interrupts can be lost meanwhile.
        case reenable
    }

    /// Why interrupts were lost, as far as the host can see it.
    /// Why irqscope knows interrupts were lost. Each cause gives a lower bound the host can prove,
    /// never an estimate.
    public enum LossCause: String, Sendable, CaseIterable {
        /// A window (MSI-X off with the guest's vectors live) in which the device's legacy line
        /// fired and no handler took it: at least one interrupt the device raised then did not
        /// reach its vector. One per such window: a level-triggered line refires until serviced,
        /// so the line's count says nothing about how many were raised.
        case lineWhileMSIXOff = "line_while_msix_off"
        /// A hit on vector 0xef, where allocated but not requested entries are parked: an
        /// interrupt nobody handled (attributed when a single device has such entries).
        case catchAllVector = "catch_all_vector"
    }

    public struct Vector: Sendable, Equatable {
        public var irq: Int
        public var requested = false
        /// The guest enabled it, the host's request_irq failed: nothing backs it.
        public var unbacked = false
        public var irte = false
        public var posted = false
        /// false for a vector found at start on a host with an IOMMU: whether it holds an IRTE,
        /// and is posted, only an IRTE event on it tells.
        public var irteKnown = true
    }

    public struct Device: Sendable {
        public var address: String
        /// The process driving the device's interrupts through VFIO (a VMM); nil for host drivers.
        public var owner: UInt32?
        /// Changed only through `set`, which keeps `tally`: a device can hold hundreds of vectors,
        /// and counting them per event put a 1-vCPU lab guest's exporter seconds behind.
        public fileprivate(set) var vectors: [Int: Vector] = [:]
        fileprivate var tally = Tally()
        public var msixEnabled = false
        /// Vectors in the MSI-X table the device was last enabled with, plus dynamic adds.
        public var tableSize = 0
        /// Enabled before irqscope started: the size it was enabled with is unknown (msi_irqs
        /// counts what is allocated now, not what the enable asked for), so a re-enable after
        /// it is no grow.
        var tableSizeUnknown = false
        /// MSI-X disable followed by enable, whatever the sizes.
        public var cycles: UInt64 = 0
        public var grows: [GrowMode: UInt64] = [:]
        /// Closed windows in which MSI-X was off while the guest had live vectors.
        public var windows = Histogram(bounds: Devices.windowBounds)
        public var requestFailures: [Int32: UInt64] = [:]
        public var enableFailures: [Int32: UInt64] = [:]
        /// At least this many interrupts were lost, by cause.
        public var lost: [LossCause: UInt64] = [:]
        /// Windows with evidence of loss: line_while_msix_off's lower bound is one per window.
        public var lossWindows: UInt64 { lost[.lineWhileMSIXOff] ?? 0 }
        /// Unhandled interrupts of the legacy line reported during windows: refires, not losses.
        public var lineUnhandledInWindows: UInt64 = 0
        /// Windows in which no loss could have been seen: the device's legacy line had no handler
        /// (or there is none), so the kernel kept it masked and nothing fired.
        public var blindWindows: UInt64 = 0
        /// Whether the device's line had a handler when MSI-X was last switched off; nil: unknown.
        var lineWatched: Bool?
        var windowBlind = false
        var windowEvidence = false
        /// When the last window closed without evidence: its line's interrupt may still be on its way.
        var unprovenWindowClosedAt: UInt64?
        /// Interrupts of its vectors that ran a host handler (remapped, not posted).
        public var delivered: UInt64 = 0
        /// Open MSI-X window with live guest vectors: interrupts now can be lost.
        public var inWindow: Bool { owner != nil && !msixEnabled && disabledWithLiveVectors }
        var requestedSinceEnable = false
        var disabledAt: UInt64?
        var disabledWithLiveVectors = false
        var sizeBeforeDisable = 0

        public var requested: Int { tally.requested }
        public var unbacked: Int { tally.unbacked }
        public var irtes: Int { tally.irtes }
        public var posted: Int { tally.posted }
        /// Whether `irtes` and `posted` are what the device holds: not while a vector found at
        /// start, on a host with an IOMMU, has had no IRTE event.
        public var irtesKnown: Bool { tally.irteUnknown == 0 }
        /// What it holds now.
        public var holdings: Holdings { Holdings(allocated: vectors.count, requested: requested, irtes: irtes, posted: posted) }
        /// The most it held at once, each figure on its own: after a VMM exits, what it holds is
        /// nothing, and what it needed is this.
        public var peak = Holdings()

        fileprivate mutating func set(_ irq: Int, _ v: Vector?) {
            if let old = vectors[irq] { tally.count(old, -1) }
            vectors[irq] = v
            if let v { tally.count(v, 1) }
        }

        fileprivate mutating func modify(_ irq: Int, _ body: (inout Vector) -> Void) {
            guard var v = vectors[irq] else { return }
            body(&v)
            set(irq, v)
        }
    }

    fileprivate struct Tally: Sendable {
        var requested = 0, unbacked = 0, irtes = 0, posted = 0, irteUnknown = 0

        mutating func count(_ v: Vector, _ n: Int) {
            if !v.irteKnown { irteUnknown += n }
            if v.requested { requested += n }
            if v.unbacked { unbacked += n }
            if v.irte { irtes += n }
            if v.posted { posted += n }
        }
    }

    public struct Holdings: Sendable, Equatable {
        public var allocated = 0, requested = 0, irtes = 0, posted = 0

        public init(allocated: Int = 0, requested: Int = 0, irtes: Int = 0, posted: Int = 0) {
            (self.allocated, self.requested, self.irtes, self.posted) = (allocated, requested, irtes, posted)
        }

        func max(_ o: Holdings) -> Holdings {
            Holdings(allocated: Swift.max(allocated, o.allocated), requested: Swift.max(requested, o.requested),
                     irtes: Swift.max(irtes, o.irtes), posted: Swift.max(posted, o.posted))
        }
    }

    /// How long after a window closes an unhandled firing of the device's line still proves that
    /// window's loss.
    public static let lateEvidenceNs: UInt64 = 10_000_000

    /// Window lengths in seconds: from a fast resize (tens of µs) to a stuck VMM.
    public static let windowBounds: [Double] = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5]

    public private(set) var devices: [String: Device] = [:]
    private var irqDevice: [Int: String] = [:]
    /// Legacy INTx line (irq number) to the devices wired to it.
    private var lineDevices: [Int: Set<String>] = [:]
    /// Losses the host saw but could not pin on one device.
    public private(set) var unattributedLost: [LossCause: UInt64] = [:]

    public init() {}

    public func device(ofIRQ irq: Int) -> String? { irqDevice[irq] }

    /// The VMM the event concerns, if its device (or irq) belongs to one.
    public func owner(of e: Event) -> UInt32? {
        guard let address = e.device ?? e.irq.flatMap({ irqDevice[Int($0)] }) else { return nil }
        return devices[address]?.owner
    }

    public mutating func apply(_ e: Event) {
        change(e)
        if let address = e.device ?? e.irq.flatMap({ irqDevice[Int($0)] }), let d = devices[address] {
            devices[address]?.peak = d.peak.max(d.holdings)
        }
    }

    private mutating func change(_ e: Event) {
        switch e.kind {
        case .irqAlloc(let count, _):
            guard e.result >= 0, let irq = e.irq.map(Int.init), let address = e.device else { return }
            for k in 0..<Int(count) { attach(irq + k, to: address) }
        case .irqFree(let count):
            guard let irq = e.irq.map(Int.init) else { return }
            for k in 0..<Int(count) { detach(irq + k) }
        case .irteAlloc(let count, _):
            guard e.result >= 0, let irq = e.irq.map(Int.init) else { return }
            for k in 0..<Int(count) {
                guard let address = irqDevice[irq + k] ?? e.device else { continue }
                attach(irq + k, to: address)
                devices[address]!.modify(irq + k) { $0.irte = true; $0.irteKnown = true }
            }
        case .irteFree(let count):
            guard let irq = e.irq.map(Int.init) else { return }
            for k in 0..<Int(count) { update(irq + k) { $0.irte = false; $0.posted = false; $0.irteKnown = true } }
        case .irtePosted(let posted):
            guard e.result == 0, let irq = e.irq.map(Int.init) else { return }
            update(irq) { $0.posted = posted }
        case .requestIRQ(let name, _):
            guard let irq = e.irq.map(Int.init) else { return }
            let named = IRQName(name)
            if case .vfioINTx(let line) = named {
                note(line: irq, of: line)
                return
            }
            guard let address = irqDevice[irq] ?? named.device else { return }
            if named.isVFIO { devices[address, default: Device(address: address)].owner = e.tgid }
            if e.result == 0 {
                attach(irq, to: address)
                update(irq) { $0.requested = true; $0.unbacked = false }
                devices[address]!.requestedSinceEnable = true
            } else {
                devices[address, default: Device(address: address)].requestFailures[Errno.of(result: e.result), default: 0] += 1
                if irqDevice[irq] == address { update(irq) { $0.unbacked = true } }
            }
        case .freeIRQ:
            guard let irq = e.irq.map(Int.init) else { return }
            update(irq) { $0.requested = false }
        case .msixEnable:
            guard let address = e.device else { return }
            modify(address) { d in
                guard e.result > 0 else {
                    d.enableFailures[Errno.of(result: e.result), default: 0] += 1
                    return
                }
                if let since = d.disabledAt {
                    d.cycles += 1
                    if Int(e.result) > d.sizeBeforeDisable { d.grows[.reenable, default: 0] += 1 }
                    if d.disabledWithLiveVectors && d.owner != nil {
                        d.windows.record(Double(e.timeNs &- since) / 1e9)
                        // a blind window's interrupt cannot arrive late either: nothing fires
                        d.unprovenWindowClosedAt = d.windowEvidence || d.windowBlind ? nil : e.timeNs
                        if d.windowBlind && !d.windowEvidence { d.blindWindows += 1 }
                    }
                }
                d.disabledAt = nil
                d.disabledWithLiveVectors = false
                d.msixEnabled = true
                d.tableSize = Int(e.result)
                d.tableSizeUnknown = false
                d.requestedSinceEnable = false
            }
        case .msixAdd:
            guard let address = e.device else { return }
            guard e.result > 0 else {
                modify(address) { $0.enableFailures[Errno.of(result: e.result), default: 0] += 1 }
                return
            }
            attach(Int(e.result), to: address)
            modify(address) { d in
                d.grows[.dynamic, default: 0] += 1
                d.tableSize += 1
            }
        case .msixDisable:
            guard let address = e.device else { return }
            modify(address) { d in
                // nested hooks (pci_free_irq_vectors -> pci_disable_msix) report one disable twice
                if !d.msixEnabled && d.disabledAt != nil { return }
                let sizeKnown = d.msixEnabled && !d.tableSizeUnknown
                d.msixEnabled = false
                d.disabledAt = e.timeNs
                d.disabledWithLiveVectors = d.requestedSinceEnable
                d.windowEvidence = false
                d.windowBlind = d.lineWatched == false
                d.unprovenWindowClosedAt = nil
                // an enable irqscope did not see (before it started, or a run of the kernel's
                // program skipped) leaves the size unknown: the re-enable is then no grow, rather
                // than one counted from 0 (seen on 7.3: 5 grows for 4)
                d.sizeBeforeDisable = sizeKnown ? d.tableSize : Int.max
                d.tableSize = 0
            }
        case .vfioSetIRQs(let s):
            guard let address = e.device else { return }
            if s.index == VFIOSetIRQs.indexINTx, s.isEventfdTrigger, s.count > 0, e.result == 0 {
                // The VMM gave the guest INTx while MSI-X was off: the guest turned MSI-X off
                // itself (QEMU's vfio_msix_disable ends with vfio_intx_enable), so none of its
                // MSI-X vectors was live, and the line's interrupts now have a handler that takes
                // them for the guest. Not a window; a resize never does this.
                if devices[address]?.disabledAt != nil { devices[address]!.disabledWithLiveVectors = false }
            }
            guard s.index == VFIOSetIRQs.indexMSIX || s.index == VFIOSetIRQs.indexMSI else { return }
            devices[address, default: Device(address: address)].owner = e.tgid
        case .unhandled(let count):
            guard let irq = e.irq.map(Int.init) else { return }
            for address in lineDevices[irq] ?? [] {
                modify(address) { d in
                    if d.inWindow {
                        // counters wrap as the kernel's u64 would, rather than trap on a crafted recording
                        d.lineUnhandledInWindows &+= count
                        guard !d.windowEvidence else { return }
                        d.windowEvidence = true
                    } else if let closed = d.unprovenWindowClosedAt, e.timeNs &- closed <= Self.lateEvidenceNs {
                        // MSI-X is back, so the device no longer raises its line: a firing this soon
                        // is the window's interrupt arriving late (1.9 ms seen under emulation)
                        d.lineUnhandledInWindows &+= count
                        d.unprovenWindowClosedAt = nil
                    } else {
                        return
                    }
                    d.lost[.lineWhileMSIXOff, default: 0] &+= 1
                }
            }
        default:
            break
        }
    }

    /// The legacy line of a device (from sysfs, or a vfio-intx request).
    public mutating func note(line irq: Int, of address: String) {
        for (other, var set) in lineDevices where set.contains(address) && other != irq {
            set.remove(address)
            lineDevices[other] = set.isEmpty ? nil : set
        }
        lineDevices[irq, default: []].insert(address)
    }

    public mutating func note(lineWatched: Bool, of address: String) {
        modify(address) { $0.lineWatched = lineWatched }
    }

    /// Interrupts that ran host handlers since the last scrape, per irq.
    public mutating func credit(delivered deltas: [Int: UInt64]) {
        for (irq, n) in deltas where n > 0 {
            guard let address = irqDevice[irq] else { continue }
            devices[address]?.delivered &+= n
        }
    }

    /// Interrupts on the catch-all vector: the device to blame when only one has parked entries.
    public mutating func credit(catchAll n: UInt64) {
        guard n > 0 else { return }
        let parked = devices.values.filter { d in d.vectors.values.contains { !$0.requested } }
        if parked.count == 1 {
            devices[parked[0].address]!.lost[.catchAllVector, default: 0] &+= n
        } else {
            unattributedLost[.catchAllVector, default: 0] &+= n
        }
    }

    /// A device as found at start. Its counters (grows, windows, losses) start at 0 and count only
    /// what is seen from here; what the look cannot prove stays unknown. Events the kernel
    /// reported between the programs' attach and the look follow it: each is one the look
    /// already shows or one that changes it, so applying them again leaves the same devices.
    public mutating func seed(_ p: Annotation.Present) {
        let requested = Set(p.requested)
        for irq in p.irqs {
            attach(irq, to: p.address)
            devices[p.address]!.modify(irq) { v in
                v.requested = requested.contains(irq)
                v.irteKnown = p.noRemapping
            }
        }
        modify(p.address) { d in
            if let owner = p.owner { d.owner = owner }
            // msi_irqs holds MSI-X entries only while MSI-X is on: the kernel frees them at disable
            let enabled = p.mode == .msix && (p.msixEnabled ?? !p.irqs.isEmpty)
            d.msixEnabled = enabled
            d.tableSizeUnknown = enabled
            d.tableSize = 0
            // vectors handled now were requested since whatever enable came before
            d.requestedSinceEnable = enabled && !requested.isEmpty
            d.peak = d.peak.max(d.holdings)
        }
    }

    /// A device a VMM process acted on, before any VFIO call said so.
    public mutating func claim(_ address: String, by tgid: UInt32) {
        guard devices[address]?.owner == nil else { return }
        devices[address, default: Device(address: address)].owner = tgid
    }

    /// Forgets the devices of owners that are gone: their vectors were released with them, and
    /// a restarted guest starts afresh.
    public mutating func retainOwners(_ alive: (UInt32) -> Bool) {
        for (address, d) in devices {
            guard let owner = d.owner, !alive(owner) else { continue }
            for irq in d.vectors.keys where irqDevice[irq] == address { irqDevice[irq] = nil }
            devices[address] = nil
        }
    }

    private mutating func attach(_ irq: Int, to address: String) {
        if let previous = irqDevice[irq], previous != address { devices[previous]?.set(irq, nil) }
        irqDevice[irq] = address
        if devices[address]?.vectors[irq] == nil {
            devices[address, default: Device(address: address)].set(irq, Vector(irq: irq))
        }
    }

    private mutating func detach(_ irq: Int) {
        guard let address = irqDevice.removeValue(forKey: irq) else { return }
        devices[address]?.set(irq, nil)
    }

    private mutating func update(_ irq: Int, _ body: (inout Vector) -> Void) {
        guard let address = irqDevice[irq], devices[address]?.vectors[irq] != nil else { return }
        devices[address]!.modify(irq, body)
    }

    private mutating func modify(_ address: String, _ body: (inout Device) -> Void) {
        body(&devices[address, default: Device(address: address)])
    }
}

/// Cumulative histogram of observations.
public struct Histogram: Sendable, Equatable {
    public let bounds: [Double]
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    public mutating func record(_ value: Double) {
        for (i, b) in bounds.enumerated() where value <= b { counts[i] += 1 }
        sum += value
        count += 1
    }
}
