import IrqscopeDecode

extension HostPosture.HostFiles {
    /// The files that say which IOMMU remaps interrupts and whether it can post them, under
    /// `root` (tests pass a fabricated tree). Each is small; an unreadable one is left out.
    public static func read(root: String = "/") -> Self {
        let root = root.hasSuffix("/") ? root : root + "/"
        let iommus = listDirectory(root + "sys/class/iommu").sorted()
        func register(_ unit: String, _ file: String) -> UInt64? {
            // "ecap"/"cap": one hex number; AMD's features: "EFR" or "EFR:EFR2" (6.6+)
            guard let text = readFile("\(root)sys/class/iommu/\(unit)/\(file)") else { return nil }
            return UInt64(text.prefix { $0.isHexDigit }, radix: 16)
        }
        return .init(
            interrupts: readFile(root + "proc/interrupts", limit: 16 << 20),
            iommus: iommus,
            acpiTables: Set(["DMAR", "IVRS"].filter { fileExists("\(root)sys/firmware/acpi/tables/\($0)") }),
            intelCaps: iommus.filter { $0.hasPrefix("dmar") }.compactMap { register($0, "intel-iommu/cap") },
            amdFeatures: iommus.filter { $0.hasPrefix("ivhd") }.compactMap { register($0, "amd-iommu/features") },
            cmdline: readFile(root + "proc/cmdline") ?? "",
            kvmIntelAPICv: readFile(root + "sys/module/kvm_intel/parameters/enable_apicv"),
            kvmAMDAVIC: readFile(root + "sys/module/kvm_amd/parameters/avic"))
    }
}
