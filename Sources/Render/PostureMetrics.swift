import IrqscopeDecode
import IrqscopeModel

/// The host's posture and, per guest, what it predicts for MSI-X resizes. Apart from
/// deviceFamilies: the posture is the live host's, which a recording does not carry.
public enum PostureMetrics {
    public static func families(_ model: HostModel, posture: HostPosture) -> [MetricFamily] {
        let host = MetricFamily("irqscope_host", .info,
            help: "What decides whether MSI-X resizes can lose interrupts on this host: msix_dynamic (VFIO adds vectors to a live MSI-X table: Linux 6.5+ on x86, read from BTF/kallsyms), interrupt_remapping (intel, amd, none: the IOMMU whose IR- chips are in use), posted_interrupts (the IOMMU and KVM post device interrupts to vCPUs; unknown when kvm is not loaded or the IOMMU's registers are not in sysfs). irqscope doctor says what each was read from.",
            samples: [.init([("msix_dynamic", posture.msixDynamic.rawValue), ("interrupt_remapping", posture.remapping.rawValue),
                             ("posted_interrupts", posture.posted.rawValue)], 1)])
        var predicted = MetricFamily("irqscope_resize_lossy_predicted", .gauge,
            help: "1 if the guest's MSI-X resizes will switch MSI-X off (a window where interrupts are lost): the kernel has no dynamic MSI-X, or its VMM is QEMU before 8.2; 0 if they add vectors to the live table. Absent when it cannot be told (another VMM, or its version unknown, on a kernel with dynamic MSI-X).")
        var mismatches = MetricFamily("irqscope_resize_prediction_mismatches", .counter,
            help: "MSI-X grows of the guest's devices that went the other way than irqscope_resize_lossy_predicted said (a dynamic add where disable/re-enable was predicted, or the reverse): the posture irqscope reports is wrong for this guest.")
        let byOwner = Dictionary(grouping: model.devices.devices.values.filter { $0.owner != nil }, by: { $0.owner! })
        var named = Set<String>()
        for tgid in model.owners.sorted() {
            let process = model.processes[tgid]
            // two VMMs by one name would make one series twice: the first (lowest pid) speaks
            guard named.insert(model.guestName(owner: tgid)).inserted else { continue }
            guard let lossy = ResizePrediction.lossy(msixDynamic: posture.msixDynamic, vmm: process?.vmm,
                                                     vmmVersion: process?.vmmVersion) else { continue }
            let labels = [("guest", model.guestName(owner: tgid))]
            predicted.add(labels, lossy ? 1 : 0)
            mismatches.add(labels, Double(ResizePrediction.mismatches(lossy: lossy, devices: byOwner[tgid] ?? [])))
        }
        return [host, predicted, mismatches]
    }
}
