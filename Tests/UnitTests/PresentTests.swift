import Foundation
import IrqscopeDecode
import IrqscopeHost
import IrqscopeModel
import IrqscopeRender
import LabChecks
import Testing
import TestSupport

/// Devices that held MSI-X vectors before irqscope started: read at start (`present`), recorded,
/// and applied ahead of the events that follow.
@Suite struct PresentTests {
    static let vfioGroupDevice = "0000:00:06.0", vfioCdevDevice = "0000:00:07.0", hostDevice = "0000:00:08.0"

    // MARK: - the annotation in recordings

    @Test func presentAnnotationsRoundTripThroughARecording() throws {
        let written: [Annotation] = [
            .present(.init(address: Self.vfioGroupDevice, mode: .msix, irqs: [34, 35, 36], requested: [34, 35],
                           msixEnabled: true, owner: 4242, noRemapping: false)),
            .present(.init(address: Self.hostDevice, mode: .msi, irqs: [50], requested: [], msixEnabled: nil, owner: nil, noRemapping: true)),
            .present(.init(address: "0000:00:09.0", mode: .msix, irqs: [], requested: [], msixEnabled: false)),
        ]
        let path = NSTemporaryDirectory() + "irqscope-present-\(UUID().uuidString).rec"
        defer { unlink(path) }
        let writer = try RecordingWriter(path: path)
        for a in written { writer.write(a) }
        writer.close()
        let read = try LabChecks.readRecording(path)
        #expect(read == written.map { .annotation($0) } + [.annotation(.end)])
    }

    @Test func damagedPresentAnnotationsAreRefused() {
        let good = ["type": "present", "address": Self.hostDevice, "mode": "msix", "irqs": "1,2", "requested": "1"]
        #expect(throws: Never.self) { try Annotation(fields: good) }
        for (key, value) in [("mode", "intx"), ("irqs", "1,x"), ("irqs", "-3"), ("requested", "1;2"),
                             ("msix_enabled", "yes"), ("owner", "-1")] {
            #expect(throws: AnnotationError.self, "\(key)=\(value)") { try Annotation(fields: good.merging([key: value]) { $1 }) }
        }
        for key in ["address", "mode", "irqs", "requested"] {
            var f = good
            f[key] = nil
            #expect(throws: AnnotationError.self, "without \(key)") { try Annotation(fields: f) }
        }
    }

    // MARK: - seeding the model from the lab's real recordings

    /// The kernel's ground truth the lab wrote: `device=… irqs=34,35 requested_irqs=34,35`.
    static func truth(_ path: String) throws -> [(device: String, irqs: [Int], requested: [Int])] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            var f: [String: String] = [:]
            for item in line.split(separator: " ") {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if kv.count == 2 { f[String(kv[0])] = String(kv[1]) }
            }
            func list(_ key: String) -> [Int] { (f[key] ?? "").split(separator: ",").compactMap { Int($0) } }
            return (f["device"] ?? "", list("irqs"), list("requested_irqs"))
        }
    }

    /// irqscope restarted while a NORESIZE (6.1) VMM was growing its guest's table: it starts after
    /// the VMM's first enable (1 vector, requested), finds that vector at start, and sees only the
    /// four disable/re-enable cycles that follow. Checked against the kernel (the lab's sysfs truth
    /// at the first scrape) and the VMM's own log, not against a replay of the whole recording.
    @Test func aSeededVFIODeviceThenRecordedReenables() throws {
        let dir = try LabChecks.unpack(FixtureTests.root + "/6.1/main")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vmm = try VMMLog.read(dir + "/vfio.vmm.log")
        #expect(vmm.noresize && vmm.vectors == 5)
        let truth = try #require(try Self.truth(dir + "/vfio.truth").first)
        let entries = try LabChecks.readRecording(dir + "/vfio.rec")
        // where irqscope "starts": right after the VMM's first successful request_irq, the one
        // its log calls `reenable vector=0 count=1`
        let cut = try #require(entries.firstIndex {
            guard case .event(let e) = $0, e.tgid == UInt32(vmm.pid), e.result == 0,
                  case .requestIRQ(let name, _) = e.kind else { return false }
            return name.hasPrefix("vfio-msix[0]")
        })
        guard case .event(let first) = entries[cut], let firstIRQ = first.irq.map(Int.init) else { Issue.record("no irq"); return }
        let owner = UInt32(vmm.pid)
        let seed: [Annotation] = [
            .process(ProcessIdentity(tgid: owner, name: "alpha", source: .qemuName)),
            .device(address: truth.device, driver: "vfio-pci", intx: nil),
            .present(.init(address: truth.device, mode: .msix, irqs: [firstIRQ], requested: [firstIRQ],
                           msixEnabled: true, owner: owner, noRemapping: false)),
        ]
        var pipeline = Pipeline(lifecycles: false, keepExited: false)
        for a in seed { pipeline.apply(a) }
        let seeded = try #require(pipeline.model.devices.devices[truth.device])
        #expect(seeded.vectors.count == 1 && seeded.requested == 1 && seeded.owner == owner && seeded.msixEnabled)
        #expect(!seeded.irtesKnown, "an IOMMU may have given the vector an IRTE: unknown, not 0")
        // ... and the recording after that point, up to the first scrape (the VMM holding all 5)
        for entry in entries[(cut + 1)...] {
            if case .annotation(.scrape(1)) = entry { break }
            _ = pipeline.play(entry)
        }
        let model = pipeline.model
        let d = try #require(model.devices.devices[truth.device])
        #expect(Set(d.vectors.keys) == Set(truth.irqs), "the kernel held \(truth.irqs)")
        #expect(d.requested == truth.requested.count && d.vectors.count == 5)
        #expect(model.guestName(owner: try #require(d.owner)) == "alpha")
        // the VMM re-enabled 5 times, once before the start: 4 cycles seen, each with the guest's
        // vector 0 live (a window); the first re-enable's previous size is unknown: no grow
        #expect(vmm.cycles == 5)
        #expect(d.cycles == 4)
        #expect(d.windows.count == 4, "the seeded vector was live when MSI-X went off")
        #expect(d.grows[.reenable] == 3)
        #expect(d.irtesKnown, "every vector was reallocated with its IRTE seen")
        let metrics = HostMetrics.deviceFamilies(model)
        let vectors = try #require(metrics.first { $0.name == "irqscope_msix_vectors" })
        let allocated = vectors.samples.first { s in
            s.labels.contains { $0 == ("device", truth.device) } && s.labels.contains { $0 == ("state", "allocated") }
        }
        #expect(allocated?.value == 5 && allocated?.labels.contains { $0 == ("guest", "alpha") } == true)
    }

    /// The hostdrivers boot's devices seeded from the kernel's truth (sysfs after the drivers
    /// loaded), then the whole recording, as if all of it came between the attach and the look:
    /// the kernel's vectors, not twice them, and no count the events alone do not give (nvme's
    /// free-and-reallocate is a real cycle either way).
    @Test func eventsTheLookAlreadyShowsChangeNothing() throws {
        let dir = try LabChecks.unpack(FixtureTests.root + "/6.12/main")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let truth = try Self.truth(dir + "/hostdrivers.truth")
        #expect(truth.count >= 2)
        let entries = try LabChecks.readRecording(dir + "/hostdrivers.rec")
        var seeded = Pipeline(lifecycles: false, keepExited: false), alone = seeded
        for t in truth {
            seeded.apply(.present(.init(address: t.device, mode: .msix, irqs: t.irqs, requested: t.requested, noRemapping: true)))
        }
        for entry in entries {
            _ = seeded.play(entry)
            _ = alone.play(entry)
        }
        for t in truth {
            let d = try #require(seeded.model.devices.devices[t.device], "\(t.device)")
            #expect(Set(d.vectors.keys) == Set(t.irqs), "\(t.device)")
            #expect(d.requested == t.requested.count, "\(t.device)")
            let e = alone.model.devices.devices[t.device]
            #expect(d.cycles == e?.cycles && d.windows.count == e?.windows.count && d.grows == e?.grows && d.lost == e?.lost
                    && d.delivered == e?.delivered, "\(t.device): cycles \(d.cycles) grows \(d.grows)")
        }
    }

    @Test func aSeededDeviceIsForgottenWithItsExitedOwner() {
        var pipeline = Pipeline(lifecycles: false, keepExited: false)
        pipeline.apply(.process(ProcessIdentity(tgid: 9, name: "beta", source: .qemuName)))
        pipeline.apply(.present(.init(address: Self.vfioGroupDevice, mode: .msix, irqs: [40], requested: [40], owner: 9)))
        #expect(pipeline.model.owners == [9])
        pipeline.apply(.exit(tgid: 9))
        #expect(pipeline.model.devices.devices.isEmpty && pipeline.model.devices.device(ofIRQ: 40) == nil)
    }

    /// On a host with an IOMMU the look cannot tell which vectors hold an IRTE: the series are
    /// absent (not 0) until the kernel reports an IRTE event for each; without one they are 0.
    @Test func irtesOfSeededVectorsAreUnknownWhereAnIOMMUCouldRemap() {
        func irteSeries(_ m: HostModel) -> (irtes: Double?, posted: Double?) {
            let f = HostMetrics.deviceFamilies(m)
            let irtes = f.first { $0.name == "irqscope_irte_entries" }?.samples.first?.value
            let posted = f.first { $0.name == "irqscope_msix_vectors" }?.samples.first { $0.labels.contains { $0 == ("state", "posted") } }?.value
            return (irtes, posted)
        }
        var m = HostModel()
        m.seed(.init(address: Self.hostDevice, mode: .msix, irqs: [40, 41], requested: [40, 41], noRemapping: false))
        #expect(irteSeries(m) == (nil, nil))
        let e = { (kind: Event.Kind, irq: Int32) in
            Event(timeNs: 1, result: 0, tgid: 1, pid: 1, irq: irq, comm: "k", device: Self.hostDevice, kind: kind)
        }
        m.apply(e(.irteAlloc(count: 1, msiIndex: 0), 40))
        #expect(irteSeries(m) == (nil, nil), "irq 41 still unknown")
        m.apply(e(.irteFree(count: 1), 41))
        #expect(irteSeries(m) == (1, 0))
        var none = HostModel()
        none.seed(.init(address: Self.hostDevice, mode: .msix, irqs: [40], requested: [40], noRemapping: true))
        #expect(irteSeries(none) == (0, 0))
    }

    // MARK: - reading a host

    /// Config space with a capability list 0x40 (MSI) -> 0x50 (MSI-X, Message Control `control`).
    static func config(msixControl control: UInt16?, size: Int = 256, loop: Bool = false) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: size)
        guard size >= 0x40 else { return c }
        c[0x06] = 0x10
        c[0x34] = 0x40
        guard size > 0x56 else { return c }
        c[0x40] = 0x05
        c[0x41] = loop ? 0x40 : (control == nil ? 0 : 0x50)
        if let control {
            c[0x50] = 0x11
            c[0x52] = UInt8(control & 0xff)
            c[0x53] = UInt8(control >> 8)
        }
        return c
    }

    @Test func msixEnableBitFromConfigSpace() {
        #expect(PresentDevices.msixEnabled(config: Self.config(msixControl: 0x8004)) == true)
        #expect(PresentDevices.msixEnabled(config: Self.config(msixControl: 0x0004)) == false)
        // function mask set, enable clear: off
        #expect(PresentDevices.msixEnabled(config: Self.config(msixControl: 0x4004)) == false)
        #expect(PresentDevices.msixEnabled(config: Self.config(msixControl: nil)) == nil, "no MSI-X capability")
        #expect(PresentDevices.msixEnabled(config: Self.config(msixControl: 0x8004, size: 64)) == nil, "header only (no CAP_SYS_ADMIN)")
        #expect(PresentDevices.msixEnabled(config: Self.config(msixControl: nil, loop: true)) == nil, "a looping list ends")
        #expect(PresentDevices.msixEnabled(config: nil) == nil)
    }

    /// A fabricated host: a VFIO device held through its group by a QEMU, one held through its
    /// cdev (iommufd), a host driver's MSI device, and a device without MSI irqs.
    @Test func readsDevicesAndTheirVFIOOwnersFromSysfsAndProc() throws {
        let tree = FakeTree("present")
        let fm = FileManager.default
        func link(_ path: String, _ target: String) throws {
            let full = tree.root + "/" + path
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: full, withDestinationPath: target)
        }
        func bytes(_ path: String, _ data: [UInt8]) throws {
            try tree.write(path, "")
            try Data(data).write(to: URL(fileURLWithPath: tree.root + "/" + path))
        }
        let pci = "sys/bus/pci/devices/"
        // group API: /dev/vfio/7
        let g = pci + Self.vfioGroupDevice
        for irq in [34, 35, 36] { try tree.write("\(g)/msi_irqs/\(irq)", "msix\n") }
        try link(g + "/driver", "../../../bus/pci/drivers/vfio-pci")
        try link(g + "/iommu_group", "../../../kernel/iommu_groups/7")
        try tree.write(g + "/irq", "11\n")
        try bytes(g + "/config", Self.config(msixControl: 0x8004))
        try tree.write("sys/kernel/irq/34/actions", "vfio-msix[0](\(Self.vfioGroupDevice))\n")
        try tree.write("sys/kernel/irq/35/actions", "vfio-msix[1](\(Self.vfioGroupDevice))\n")
        try tree.write("sys/kernel/irq/36/actions", "\n")
        try link("proc/4242/fd/5", "/dev/vfio/7")
        try link("proc/4242/fd/4", "/dev/vfio/vfio")
        try tree.write("proc/4242/cmdline", "qemu-system-x86_64\u{0}-name\u{0}guest=alpha\u{0}")
        try tree.write("proc/4242/comm", "qemu-system-x86\n")
        // a child that inherited the group's descriptor is not the VMM
        try link("proc/4300/fd/5", "/dev/vfio/7")
        // cdev API: /dev/vfio/devices/vfio3, seen from another mount namespace
        let c = pci + Self.vfioCdevDevice
        for irq in [40, 41] { try tree.write("\(c)/msi_irqs/\(irq)", "msix\n") }
        try link(c + "/driver", "../../../bus/pci/drivers/vfio-pci")
        try link(c + "/iommu_group", "../../../kernel/iommu_groups/8")
        try bytes(c + "/config", Self.config(msixControl: 0x8001, size: 64))
        try tree.write("sys/kernel/irq/40/actions", "vfio-msix[0](\(Self.vfioCdevDevice))\n")
        try link("sys/class/vfio-dev/vfio3/device", "../../../devices/pci0000:00/\(Self.vfioCdevDevice)")
        try link("proc/5000/fd/9", "/vfio/devices/vfio3")
        try tree.write("proc/5000/comm", "cloud-hypervisor\n")
        // a host driver's MSI (not MSI-X) device
        let h = pci + Self.hostDevice
        try tree.write(h + "/msi_irqs/50", "msi\n")
        try link(h + "/driver", "../../../bus/pci/drivers/nvme")
        try bytes(h + "/config", Self.config(msixControl: nil))
        try tree.write("sys/kernel/irq/50/actions", "nvme0q0\n")
        // a process holding an unrelated group, and a device without MSI irqs
        try link("proc/6000/fd/1", "/dev/vfio/9")
        try link(pci + "0000:00:09.0/driver", "../../../bus/pci/drivers/ahci")
        try tree.write("sys/class/iommu/dmar0/name", "dmar0\n")

        let found = PresentDevices(root: tree.root).annotations()
        #expect(found == [
            .process(ProcessIdentity(tgid: 4242, name: "alpha", source: .qemuName)),
            .process(ProcessIdentity(tgid: 5000, name: "cloud-hypervisor-5000", source: .comm)),
            .device(address: Self.vfioGroupDevice, driver: "vfio-pci", intx: 11),
            .present(.init(address: Self.vfioGroupDevice, mode: .msix, irqs: [34, 35, 36], requested: [34, 35],
                           msixEnabled: true, owner: 4242, noRemapping: false)),
            .device(address: Self.vfioCdevDevice, driver: "vfio-pci", intx: nil),
            .present(.init(address: Self.vfioCdevDevice, mode: .msix, irqs: [40, 41], requested: [40],
                           msixEnabled: nil, owner: 5000, noRemapping: false)),
            .device(address: Self.hostDevice, driver: "nvme", intx: nil),
            .present(.init(address: Self.hostDevice, mode: .msi, irqs: [50], requested: [50],
                           msixEnabled: nil, owner: nil, noRemapping: false)),
        ])

        // applied, they name the guests as a live-seen VMM is named
        var pipeline = Pipeline(lifecycles: false, keepExited: false)
        for a in found { pipeline.apply(a) }
        let m = pipeline.model
        #expect(m.devices.devices[Self.vfioGroupDevice].flatMap { $0.owner.map(m.guestName(owner:)) } == "alpha")
        #expect(m.devices.devices[Self.vfioCdevDevice].flatMap { $0.owner.map(m.guestName(owner:)) } == "cloud-hypervisor-5000")
        #expect(m.devices.devices[Self.hostDevice]?.owner == nil && m.drivers[Self.hostDevice] == "nvme")
        #expect(m.devices.devices[Self.vfioCdevDevice]?.msixEnabled == true, "msi_irqs in msix mode: enabled")
        #expect(m.devices.devices[Self.hostDevice]?.msixEnabled == false, "MSI, not MSI-X")
        // without an IOMMU (no /sys/class/iommu entries), no vector can hold an IRTE
        try fm.removeItem(atPath: tree.root + "/sys/class/iommu/dmar0")
        #expect(PresentDevices(root: tree.root).annotations().allSatisfy {
            if case .present(let p) = $0 { return p.noRemapping } else { return true }
        })
    }
}
