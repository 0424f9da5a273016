import Foundation
import IrqscopeDecode
import IrqscopeHost
import IrqscopeModel
import IrqscopeRender
import Testing
import TestSupport

/// The posture (dynamic MSI-X, interrupt remapping, posting) derived from faked kernel facts and
/// host files, QEMU's version banner, and the prediction of lossy resizes.
@Suite struct PostureTests {
    static let intelIRQs = "           CPU0\n  0:   30   IR-IO-APIC    2-edge   timer\n 24:   0   DMAR-MSI    0-edge   dmar0\n 25:  1  IR-PCI-MSIX-0000:00:03.0  0-edge  nvme0q0\n"
    static let noIRQs = "           CPU0\n  0:   30   IO-APIC    2-edge   timer\n 25:  1  PCI-MSIX-0000:00:03.0  0-edge  nvme0q0\n"

    func files(_ interrupts: String? = Self.intelIRQs, iommus: [String] = ["dmar0"], tables: Set<String> = ["DMAR"],
               intel: [UInt64] = [], amd: [UInt64] = [], cmdline: String = "ro quiet",
               apicv: String? = nil, avic: String? = nil) -> HostPosture.HostFiles {
        .init(interrupts: interrupts, iommus: iommus, acpiTables: tables, intelCaps: intel, amdFeatures: amd,
              cmdline: cmdline, kvmIntelAPICv: apicv, kvmAMDAVIC: avic)
    }

    func posture(allocAt: Bool = true, hasDyn: Bool? = true, vfioFunctions: Bool = false,
                 _ f: HostPosture.HostFiles) -> HostPosture {
        HostPosture(symbols: .init(allocAt: allocAt, vfioHasDynMSIX: hasDyn, vfioDynamicFunctions: vfioFunctions), files: f)
    }

    @Test func dynamicMSIXFollowsTheKernelsSymbols() {
        // 6.1: no pci_msix_alloc_irq_at, whatever VFIO's BTF says (there is none to say)
        #expect(posture(allocAt: false, hasDyn: nil, files()).msixDynamic == .no)
        // 6.2-6.4: the PCI core can, VFIO's struct has no has_dyn_msix
        #expect(posture(allocAt: true, hasDyn: false, files()).msixDynamic == .no)
        #expect(posture(allocAt: true, hasDyn: true, files()).msixDynamic == .yes)
        // vfio_pci_core not loaded: only a 6.5 function in kallsyms can say yes
        #expect(posture(allocAt: true, hasDyn: nil, vfioFunctions: true, files()).msixDynamic == .yes)
        #expect(posture(allocAt: true, hasDyn: nil, vfioFunctions: false, files()).msixDynamic == .unknown)
    }

    @Test func remappingIsWhatIsInUseNotWhatIsBuilt() {
        #expect(posture(files()).remapping == .intel)
        #expect(posture(files(iommus: ["ivhd0"], tables: ["IVRS"])).remapping == .amd)
        // intel_iommu=off with intremap on: no sysfs units, the firmware table names the kind
        #expect(posture(files(iommus: [], tables: ["DMAR"])).remapping == .intel)
        #expect(posture(files(iommus: [], tables: [])).remapping == .unknown)
        // an IOMMU present but nothing remapped (intremap=off, or a kernel without IRQ_REMAP)
        let off = posture(files(Self.noIRQs, iommus: ["dmar0"], tables: ["DMAR"]))
        #expect(off.remapping == .none && off.posted == .no)
        #expect(posture(files(nil)).remapping == .unknown)
    }

    @Test func postingNeedsTheIOMMUAndKVM() {
        let pi: UInt64 = 1 << 59, noPI: UInt64 = 0x00d2_008c_2266_0462
        #expect(posture(files(intel: [pi, pi], apicv: "Y\n")).posted == .yes)
        #expect(posture(files(intel: [pi, noPI], apicv: "Y\n")).posted == .no)
        #expect(posture(files(intel: [pi], apicv: "N\n")).posted == .no)
        #expect(posture(files(intel: [pi], apicv: nil)).posted == .unknown)
        #expect(posture(files(intel: [pi], cmdline: "intremap=on,nopost", apicv: "Y")).posted == .no)
        #expect(posture(files(intel: [])).posted == .unknown)
        let ga: UInt64 = 1 << 7 | 1 << 21
        let amd = { (features: [UInt64], avic: String?, cmdline: String) in
            posture(files(iommus: ["ivhd0"], tables: ["IVRS"], amd: features, cmdline: cmdline, avic: avic)).posted
        }
        #expect(amd([ga], "1\n", "") == .yes)
        #expect(amd([1 << 7], "1\n", "") == .no)    // GA without vAPIC mode: legacy GA, not posted
        #expect(amd([ga], "0\n", "") == .no)
        #expect(amd([ga], "Y", "amd_iommu_intr=legacy") == .no)
    }

    @Test func hostFilesAreReadFromSysfs() throws {
        let tree = FakeTree("posture"), root = tree.root
        let write = tree.write
        try write("proc/interrupts", Self.intelIRQs)
        try write("proc/cmdline", "intel_iommu=on\n")
        try write("sys/class/iommu/ivhd0/amd-iommu/features", "25bf732fa2295afe:0\n")
        try write("sys/firmware/acpi/tables/IVRS", "")
        try write("sys/module/kvm_amd/parameters/avic", "Y\n")
        let f = HostPosture.HostFiles.read(root: root)
        #expect(f.iommus == ["ivhd0"] && f.acpiTables == ["IVRS"] && f.amdFeatures == [0x25bf_732f_a229_5afe])
        #expect(f.kvmAMDAVIC == "Y\n" && f.kvmIntelAPICv == nil && f.intelCaps.isEmpty)
        // 0x...a2295afe: bit 7 (GASup) and bit 21 (GAMSup vAPIC) set
        #expect(posture(f).posted == .yes && posture(f).remapping == .amd)
    }

    @Test(arguments: [
        ("7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright", "7.2.22"),
        ("10.0.2 (Debian 1:10.0.2+ds-2)", "10.0.2"),
        ("8.2.0\n", "8.2.0"),
        ("9.1.50 (v9.1.0-123-gabc)", "9.1.50"),
        ("8.2.", "8.2"),
        ("(none)", nil),
        ("", nil),
    ] as [(String, String?)])
    func qemuVersionAfterItsBanner(text: String, expected: String?) {
        #expect(VMMVersion.qemu(afterBanner: Array(text.utf8)) == expected)
    }

    @Test func predictionFromKernelAndVMM() {
        let lossy = ResizePrediction.lossy
        // a kernel without dynamic MSI-X: every VMM grows by disable/re-enable
        #expect(lossy(.no, "qemu", "10.0.2") == true && lossy(.no, "vmm", nil) == true && lossy(.no, nil, nil) == true)
        // a kernel with it: QEMU decides, 8.2 being the first that adds vectors
        #expect(lossy(.yes, "qemu", "7.2.22") == true)
        #expect(lossy(.yes, "qemu", "8.1.5") == true)
        #expect(lossy(.yes, "qemu", "8.2") == false && lossy(.yes, "qemu", "8.2.0") == false && lossy(.yes, "qemu", "10.0.2") == false)
        #expect(lossy(.yes, "cloud-hypervisor", nil) == nil && lossy(.yes, "qemu", nil) == nil)
        // kernel unknown: only an old QEMU settles it
        #expect(lossy(.unknown, "qemu", "7.2.22") == true && lossy(.unknown, "qemu", "9.0.0") == nil)
    }

    @Test func processAnnotationKeepsTheVMMAndReadsOldRecordings() throws {
        let p = ProcessIdentity(tgid: 42, name: "alpha", source: .qemuName, vmm: "qemu", vmmVersion: "7.2.22")
        let fields = Dictionary(uniqueKeysWithValues: Annotation.process(p).fields)
        #expect(try Annotation(fields: fields) == .process(p))
        // a recording from before: no vmm fields, unknown
        let old = try Annotation(fields: ["type": "process", "tgid": "42", "name": "alpha", "source": "qemu-name"])
        #expect(old == .process(ProcessIdentity(tgid: 42, name: "alpha", source: .qemuName)))
    }

    /// A guest predicted lossy is flagged from its first VFIO call, and grows that go the other way count as mismatches.
    @Test func metricsFlagTheGuestAndCountMismatches() throws {
        var pipeline = Pipeline(lifecycles: false, keepExited: false)
        pipeline.apply(.process(ProcessIdentity(tgid: 7, name: "old", source: .qemuName, vmm: "qemu", vmmVersion: "7.2.0")))
        pipeline.apply(.process(ProcessIdentity(tgid: 8, name: "new", source: .qemuName, vmm: "qemu", vmmVersion: "10.0.2")))
        let dynamic = HostPosture(symbols: .init(allocAt: true, vfioHasDynMSIX: true, vfioDynamicFunctions: true),
                                  files: files(Self.noIRQs))
        func claim(_ tgid: UInt32, _ device: String) {
            _ = pipeline.apply(Event(timeNs: 1, tgid: tgid, pid: tgid, comm: "qemu", device: device,
                                     kind: .vfioSetIRQs(VFIOSetIRQs(flags: 0x24, index: VFIOSetIRQs.indexMSIX, start: 0, count: 1))))
        }
        claim(7, "0000:00:04.0")
        claim(8, "0000:00:05.0")
        let m = try parseExposition(render(PostureMetrics.families(pipeline.model, posture: dynamic), format: .prometheusText))
        #expect(m.value("irqscope_host_info", ["msix_dynamic": "yes", "interrupt_remapping": "none", "posted_interrupts": "no"]) == 1)
        #expect(m.value("irqscope_resize_lossy_predicted", ["guest": "old"]) == 1)
        #expect(m.value("irqscope_resize_lossy_predicted", ["guest": "new"]) == 0)
        #expect(m.value("irqscope_resize_prediction_mismatches_total", ["guest": "old"]) == 0)
        // the new QEMU grows its device by disable and re-enable after all: a mismatch
        let enable = Event.Kind.msixEnable(minVectors: 1, maxVectors: 2, flags: 0)
        for (t, result, kind) in [(2, 1, enable), (3, 0, .msixDisable), (4, 2, enable)] as [(UInt64, Int64, Event.Kind)] {
            _ = pipeline.apply(Event(timeNs: t, result: result, tgid: 8, pid: 8, comm: "qemu", device: "0000:00:05.0", kind: kind))
        }
        let after = try parseExposition(render(PostureMetrics.families(pipeline.model, posture: dynamic), format: .prometheusText))
        #expect(after.value("irqscope_resize_prediction_mismatches_total", ["guest": "new"]) == 1)
        #expect(after.value("irqscope_resize_prediction_mismatches_total", ["guest": "old"]) == 0)
        // guest_info carries the VMM
        let info = try parseExposition(render(HostMetrics.deviceFamilies(pipeline.model), format: .prometheusText))
        #expect(info.value("irqscope_guest_info", ["guest": "old", "vmm": "qemu", "vmm_version": "7.2.0"]) == 1)
    }
}

