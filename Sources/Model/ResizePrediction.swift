import IrqscopeDecode

/// Whether a guest's MSI-X resizes will switch MSI-X off (a window where interrupts are lost),
/// decided from its start by the host's posture and its VMM, and checked against the grows that
/// follow.
public enum ResizePrediction {
    /// The first QEMU that adds vectors to a live table where VFIO allows it (Jing Liu's series
    /// "vfio: detect/enable dynamic MSI-X allocation"); before it, every grow disables MSI-X.
    public static let qemuDynamic = [8, 2]

    /// true: resizes disable and re-enable MSI-X (lossy); false: they add vectors to the live
    /// table; nil: cannot tell (a VMM other than QEMU, or its version unknown, on a kernel that
    /// would allow either).
    public static func lossy(msixDynamic: HostPosture.Answer, vmm: String?, vmmVersion: String?) -> Bool? {
        let qemuOld: Bool? = vmm == "qemu" ? vmmVersion.flatMap(VMMVersion.parts).map { VMMVersion.less($0, qemuDynamic) } : nil
        switch msixDynamic {
        // VFIO reports NORESIZE: any VMM must switch MSI-X off to grow the table
        case .no: return true
        case .yes: return qemuOld
        case .unknown: return qemuOld == true ? true : nil
        }
    }

    /// Grows of a guest's devices that went the other way than predicted.
    public static func mismatches(lossy: Bool, devices: [Devices.Device]) -> UInt64 {
        let unexpected: Devices.GrowMode = lossy ? .dynamic : .reenable
        return devices.reduce(0) { $0 &+ ($1.grows[unexpected] ?? 0) }
    }
}
