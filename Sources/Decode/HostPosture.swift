/// What decides, before any guest resizes its MSI-X table, whether that resize can lose
/// interrupts: whether VFIO adds vectors to a live table (dynamic MSI-X), which IOMMU remaps
/// interrupts, and whether they can be posted straight to vCPUs. x86 only, as irqscope is (on
/// ARM64 the GIC ITS has no dynamic MSI-X for VFIO at all).
public struct HostPosture: Sendable, Equatable {
    public enum Answer: String, Sendable { case yes, no, unknown }
    public enum Remapping: String, Sendable { case intel, amd, none, unknown }

    public var msixDynamic: Answer
    public var remapping: Remapping
    public var posted: Answer
    /// Per line, what the answer was read from (doctor shows it).
    public var msixDynamicWhy: String
    public var remappingWhy: String
    public var postedWhy: String

    public init(msixDynamic: Answer, msixDynamicWhy: String, remapping: Remapping, remappingWhy: String,
                posted: Answer, postedWhy: String) {
        self.msixDynamic = msixDynamic
        self.msixDynamicWhy = msixDynamicWhy
        self.remapping = remapping
        self.remappingWhy = remappingWhy
        self.posted = posted
        self.postedWhy = postedWhy
    }

    public static let unknown = HostPosture(msixDynamic: .unknown, msixDynamicWhy: "not looked at", remapping: .unknown,
                                            remappingWhy: "not looked at", posted: .unknown, postedWhy: "not looked at")

    /// What the kernel's BTF and kallsyms say about dynamic MSI-X; nil where it could not be looked at.
    public struct KernelSymbols: Sendable, Equatable {
        /// `pci_msix_alloc_irq_at` (6.2+) in vmlinux's BTF or kallsyms: the PCI core can add a vector.
        public var allocAt: Bool
        /// `struct vfio_pci_core_device` in vfio_pci_core's BTF has `has_dyn_msix` (added in 6.5 with
        /// VFIO's use of it); nil when that BTF is not there (module not loaded, no module BTF).
        public var vfioHasDynMSIX: Bool?
        /// `vfio_msi_alloc_irq` or `vfio_irq_ctx_alloc` (6.5+) in kallsyms. Static functions, often
        /// inlined (Debian 6.12 inlines the first): present proves 6.5+, absent proves nothing.
        public var vfioDynamicFunctions: Bool

        public init(allocAt: Bool, vfioHasDynMSIX: Bool?, vfioDynamicFunctions: Bool) {
            self.allocAt = allocAt
            self.vfioHasDynMSIX = vfioHasDynMSIX
            self.vfioDynamicFunctions = vfioDynamicFunctions
        }
    }

    /// Host files that say which IOMMU remaps and whether it posts, as read (nil: unreadable).
    public struct HostFiles: Sendable, Equatable {
        /// /proc/interrupts
        public var interrupts: String?
        /// Names under /sys/class/iommu (dmarN: Intel, ivhdN: AMD).
        public var iommus: [String]
        /// Which of the ACPI tables DMAR (VT-d) and IVRS (AMD-Vi) exist.
        public var acpiTables: Set<String>
        /// Intel: each unit's capability register (/sys/class/iommu/dmarN/intel-iommu/cap).
        public var intelCaps: [UInt64]
        /// AMD: each unit's extended feature register (/sys/class/iommu/ivhdN/amd-iommu/features).
        public var amdFeatures: [UInt64]
        /// /proc/cmdline
        public var cmdline: String
        /// /sys/module/kvm_intel/parameters/enable_apicv, /sys/module/kvm_amd/parameters/avic
        public var kvmIntelAPICv: String?
        public var kvmAMDAVIC: String?

        public init(interrupts: String?, iommus: [String], acpiTables: Set<String>, intelCaps: [UInt64], amdFeatures: [UInt64],
                    cmdline: String, kvmIntelAPICv: String?, kvmAMDAVIC: String?) {
            self.interrupts = interrupts
            self.iommus = iommus
            self.acpiTables = acpiTables
            self.intelCaps = intelCaps
            self.amdFeatures = amdFeatures
            self.cmdline = cmdline
            self.kvmIntelAPICv = kvmIntelAPICv
            self.kvmAMDAVIC = kvmAMDAVIC
        }
    }

    public init(symbols: KernelSymbols, files: HostFiles) {
        (msixDynamic, msixDynamicWhy) = Self.msixDynamic(symbols)
        (remapping, remappingWhy) = Self.remapping(files)
        (posted, postedWhy) = Self.posted(files, remapping: remapping)
    }

    static func msixDynamic(_ s: KernelSymbols) -> (Answer, String) {
        if !s.allocAt {
            return (.no, "no pci_msix_alloc_irq_at in BTF or kallsyms (before 6.2): VFIO reports NORESIZE, a VMM grows MSI-X by disabling it")
        }
        switch s.vfioHasDynMSIX {
        case true?: return (.yes, "vfio_pci_core's BTF has vfio_pci_core_device.has_dyn_msix (6.5+): VFIO adds vectors to a live table where the device's MSI domain allows it")
        case false?: return (.no, "vfio_pci_core_device has no has_dyn_msix (6.2-6.4): the PCI core could add vectors, VFIO does not")
        case nil where s.vfioDynamicFunctions:
            return (.yes, "vfio_msi_alloc_irq or vfio_irq_ctx_alloc in kallsyms (6.5+)")
        case nil:
            return (.unknown, "pci_msix_alloc_irq_at exists (6.2+), but vfio_pci_core's BTF is not there (module not loaded?) to tell whether VFIO uses it (6.5+)")
        }
    }

    static func remapping(_ f: HostFiles) -> (Remapping, String) {
        guard let interrupts = f.interrupts else { return (.unknown, "/proc/interrupts unreadable") }
        // IR-IO-APIC, IR-PCI-MSI, IR-PCI-MSIX-<bdf>: a chip of the remapping domain is in use
        let remapped = interrupts.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).contains { $0.hasPrefix("IR-") }
        guard remapped else { return (.none, "no interrupt in /proc/interrupts goes through an IR- chip") }
        let intel = f.iommus.contains { $0.hasPrefix("dmar") }, amd = f.iommus.contains { $0.hasPrefix("ivhd") }
        if intel != amd { return (intel ? .intel : .amd, "IR- chips in /proc/interrupts; /sys/class/iommu has \(intel ? "dmar" : "ivhd") units") }
        let dmar = f.acpiTables.contains("DMAR"), ivrs = f.acpiTables.contains("IVRS")
        if dmar != ivrs { return (dmar ? .intel : .amd, "IR- chips in /proc/interrupts; the firmware has a\(dmar ? " DMAR" : "n IVRS") table") }
        return (.unknown, "IR- chips in /proc/interrupts, but neither /sys/class/iommu nor the ACPI tables name one IOMMU kind")
    }

    static func posted(_ f: HostFiles, remapping: Remapping) -> (Answer, String) {
        let options = f.cmdline.split(separator: " ")
        func option(_ name: String) -> [Substring] {
            options.filter { $0.hasPrefix(name + "=") }.flatMap { $0.dropFirst(name.count + 1).split(separator: ",") }
        }
        func on(_ value: String?) -> Bool? {
            switch value?.trimmingSpace { case "Y", "1": true; case "N", "0": false; default: nil }
        }
        switch remapping {
        case .none: return (.no, "no interrupt remapping")
        case .unknown: return (.unknown, "interrupt remapping kind unknown")
        case .intel:
            if option("intremap").contains("nopost") { return (.no, "intremap=nopost on the kernel command line") }
            // VT-d CAP.PI, bit 59; the kernel posts only if every unit has it
            guard !f.intelCaps.isEmpty else { return (.unknown, "no /sys/class/iommu/dmar*/intel-iommu/cap to read VT-d CAP.PI from") }
            guard f.intelCaps.allSatisfy({ $0 >> 59 & 1 == 1 }) else { return (.no, "a VT-d unit lacks posted interrupts (CAP.PI, bit 59)") }
            switch on(f.kvmIntelAPICv) {
            case true?: return (.yes, "every VT-d unit has CAP.PI and kvm_intel enable_apicv=Y")
            case false?: return (.no, "kvm_intel enable_apicv=N: KVM does not post")
            case nil: return (.unknown, "VT-d units have CAP.PI; kvm_intel not loaded, so whether KVM posts is not known")
            }
        case .amd:
            if option("amd_iommu_intr").contains(where: { $0 == "legacy" || $0 == "legacy_ga" }) {
                return (.no, "amd_iommu_intr=legacy or legacy_ga on the kernel command line")
            }
            // EFR GASup (bit 7) and GAMSup vAPIC (bit 21): what the driver needs for vAPIC mode
            guard !f.amdFeatures.isEmpty else { return (.unknown, "no /sys/class/iommu/ivhd*/amd-iommu/features to read GASup from") }
            guard f.amdFeatures.allSatisfy({ $0 >> 7 & 1 == 1 && $0 >> 21 & 1 == 1 }) else {
                return (.no, "an AMD-Vi unit lacks guest virtual APIC (EFR GASup bit 7, GAMSup bit 21)")
            }
            switch on(f.kvmAMDAVIC) {
            case true?: return (.yes, "every AMD-Vi unit has GA vAPIC and kvm_amd avic=Y")
            case false?: return (.no, "kvm_amd avic off: KVM does not post")
            case nil: return (.unknown, "AMD-Vi units have GA vAPIC; kvm_amd not loaded, so whether KVM posts is not known")
            }
        }
    }
}

private extension StringProtocol {
    var trimmingSpace: Substring {
        var s = Substring(self)
        while let c = s.last, c == "\n" || c == " " { s = s.dropLast() }
        return s
    }
}
