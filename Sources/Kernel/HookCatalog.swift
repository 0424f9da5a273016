/// Where irqscope hooks the kernel. A family is one capability; its alternatives are
/// per-kernel variants in order of preference (the first that this kernel offers is used);
/// every hook of the chosen alternative that exists is attached.
/// Program names in BPF/*.h follow `<mechanism>__<hook>` (ProgramName). The BPF side's
/// knowledge of kernel versions is in BPF/compat.h; an alternative's note says which kernels
/// it is for, and why.
struct HookSpec: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// A kernel function. `returnsValue`: the handler needs the return value (fexit /
        /// kretprobe). `structReturn`: returns a struct by value, which trampolines refuse.
        case function(returnsValue: Bool, structReturn: Bool = false)
        case tracepoint(group: String)
    }

    var name: String
    var kind: Kind
    /// The kernel module that provides it, when not built into vmlinux.
    var module: String? = nil
    /// A tracepoint whose handler reads its typed arguments directly (tp_btf), where raw_tp
    /// would need a probe read: preferred as tp_btf. The others prefer raw_tp, which does the
    /// same with the raw arguments and costs the verifier no search of kernel BTF (the attach
    /// target's, 0.15 ms a program on 6.18: raw_tp loaded the lifecycle programs in 14 ms
    /// against 22).
    var typedArgs = false

    var displayName: String {
        if case .tracepoint(let group) = kind { return "\(group):\(name)" }
        return name
    }

    static func fn(_ name: String, returns: Bool = true, structReturn: Bool = false, module: String? = nil) -> HookSpec {
        HookSpec(name: name, kind: .function(returnsValue: returns, structReturn: structReturn), module: module)
    }

    static func tp(_ group: String, _ name: String, module: String? = nil, typedArgs: Bool = false) -> HookSpec {
        HookSpec(name: name, kind: .tracepoint(group: group), module: module, typedArgs: typedArgs)
    }
}

struct FamilySpec: Sendable {
    var name: String
    var summary: String
    var cost: String
    var alternatives: [Alternative]
}

/// One per-kernel variant of a family: the hooks it attaches, and the kernel versions or
/// commits that make it the right (or only) choice.
struct Alternative: Sendable {
    var note: String
    var hooks: [HookSpec]
    init(_ note: String, _ hooks: [HookSpec]) {
        self.note = note
        self.hooks = hooks
    }
}

enum HookCatalog {
    /// The family without which `serve` has nothing to say.
    static let coreFamily = "irq_delivery"

    static let families: [FamilySpec] = [
        FamilySpec(
            name: "irq_delivery",
            summary: "interrupts handled and unhandled per irq",
            cost: "no irqscope_interrupts_total or irqscope_interrupts_unhandled_total",
            alternatives: [.init("every kernel: tp_btf from 5.5 (ac4414b5ca47), raw_tp before",
                                 [.tp("irq", "irq_handler_exit", typedArgs: true)])]),
        FamilySpec(
            name: "spurious",
            summary: "interrupts on vectors without a handler (0xef: allocated but not requested)",
            cost: "no irqscope_spurious_interrupts_total",
            alternatives: [.init("x86, every supported kernel", [.tp("irq_vectors", "spurious_apic_entry")])]),
        FamilySpec(
            name: "vector_matrix",
            summary: "CPU vector space per CPU and globally",
            cost: "no irqscope_cpu_vectors_* or irqscope_vector_space_* gauges",
            alternatives: [.init("x86, every supported kernel (the irq_matrix tracepoints are from 4.15)", [
                .tp("irq_matrix", "irq_matrix_online"), .tp("irq_matrix", "irq_matrix_offline"),
                .tp("irq_matrix", "irq_matrix_reserve"), .tp("irq_matrix", "irq_matrix_remove_reserved"),
                .tp("irq_matrix", "irq_matrix_assign_system"), .tp("irq_matrix", "irq_matrix_alloc"),
                .tp("irq_matrix", "irq_matrix_free"), .tp("irq_matrix", "irq_matrix_assign"),
                .tp("irq_matrix", "irq_matrix_alloc_managed"), .tp("irq_matrix", "irq_matrix_reserve_managed"),
                .tp("irq_matrix", "irq_matrix_remove_managed"),
            ])]),
        FamilySpec(
            name: "vector_domain",
            summary: "x86 vector reservation, allocation, activation, placement and teardown per irq",
            cost: "no CPU-vector steps (reserve, alloc, activate, config) in traces; no reservation-mode evidence",
            alternatives: [.init("x86, every supported kernel", [
                .tp("irq_vectors", "vector_reserve"), .tp("irq_vectors", "vector_reserve_managed"),
                .tp("irq_vectors", "vector_alloc"), .tp("irq_vectors", "vector_alloc_managed"),
                .tp("irq_vectors", "vector_activate"), .tp("irq_vectors", "vector_deactivate"),
                .tp("irq_vectors", "vector_teardown"), .tp("irq_vectors", "vector_config"),
            ])]),
        FamilySpec(
            name: "msix_enable",
            summary: "bulk MSI-X enables: requested min/max, vectors granted, device",
            cost: "MSI-X enables are not seen: no vector-table sizes, no re-enable cycles",
            alternatives: [
                .init("the funnel of every bulk enable; static up to 6.1, and inlined by Debian's 5.10 build",
                      [.fn("__pci_enable_msix_range")]),
                .init("where it is inlined: its two exported callers", [.fn("pci_alloc_irq_vectors_affinity"), .fn("pci_enable_msix_range")]),
            ]),
        FamilySpec(
            name: "msix_add",
            summary: "vectors added one by one to a live MSI-X table (dynamic MSI-X, 6.2+)",
            cost: "lossless dynamic growth is not seen (on kernels that have it)",
            alternatives: [.init("6.2+, 34026364df8e \"PCI/MSI: Provide post-enable dynamic allocation interfaces for MSI-X\"; returns struct msi_map, so kretprobe only",
                                 [.fn("pci_msix_alloc_irq_at", structReturn: true)])]),
        FamilySpec(
            name: "msix_disable",
            summary: "MSI-X switched off on a device: the start of a window where interrupts can be lost",
            cost: "disable/re-enable windows are not seen: lossy resizes cannot be measured",
            // Before 6.6 pci_msix_shutdown is inlined, and 6.1 splits pci_disable_msix
            // (pci_disable_msix.part.0) so that pci_free_irq_vectors, which VFIO and most drivers
            // call, bypasses its entry: hook both, the model ignores a disable of a disabled table.
            alternatives: [
                .init("6.2+: a global function (static, and inlined, from 4.13 to 6.1)", [.fn("pci_msix_shutdown", returns: false)]),
                .init("up to 6.1", [.fn("pci_disable_msix", returns: false), .fn("pci_free_irq_vectors", returns: false)]),
            ]),
        FamilySpec(
            name: "msi_alloc",
            summary: "MSI domain allocation of interrupt descriptors",
            cost: "descriptor allocation is not seen (vector counts still come from msix_enable)",
            alternatives: [
                .init("every kernel; (dev, domain, ctrl) from 6.2, f2480e7dacdc (BPF/compat.h); static there, so inlined by some builds",
                      [.fn("__msi_domain_alloc_irqs")]),
                .init("5.17-6.1, 0f62d941acf9 \"genirq/msi: Provide msi_domain_alloc/free_irqs_descs_locked()\"",
                      [.fn("msi_domain_alloc_irqs_descs_locked")]),
                .init("6.2+, f2480e7dacdc \"genirq/msi: Provide new domain id allocation functions\"",
                      [.fn("msi_domain_alloc_irqs_all_locked"), .fn("msi_domain_alloc_irqs_range_locked")]),
            ]),
        FamilySpec(
            name: "msi_irqs",
            summary: "irq numbers given to and taken from a device's MSI descriptors (MSI domain .alloc/.free)",
            cost: "irqs cannot be tied to devices where interrupt remapping is off: no per-device vector counts",
            alternatives: [.init("every supported kernel: the MSI domain's .alloc/.free ops",
                                 [.fn("msi_domain_alloc"), .fn("msi_domain_free", returns: false)])]),
        FamilySpec(
            name: "msi_free",
            summary: "MSI domain release of interrupt descriptors",
            cost: "descriptor release is not seen",
            // At the return, with the irqs msi_domain_free released meanwhile. 6.2+ shutdown calls
            // _all_locked, into which Debian's 6.12 inlines _range_locked: hook both.
            alternatives: [
                .init("every kernel; (dev, domain, ctrl) from 6.2 (BPF/compat.h); static there, so inlined by some builds",
                      [.fn("__msi_domain_free_irqs")]),
                .init("5.17-6.1, 0f62d941acf9", [.fn("msi_domain_free_irqs_descs_locked")]),
                .init("6.2+, the domain id based interfaces of the same series as f2480e7dacdc",
                      [.fn("msi_domain_free_irqs_all_locked"), .fn("msi_domain_free_irqs_range_locked")]),
            ]),
        FamilySpec(
            name: "request_irq",
            summary: "request_irq: where a CPU vector is really taken, and its failures",
            cost: "requested vectors and host request_irq failures are not seen",
            alternatives: [.init("every kernel (request_irq is an inline wrapper)", [.fn("request_threaded_irq")])]),
        FamilySpec(
            name: "free_irq",
            summary: "free_irq: a vector given back",
            cost: "released vectors are not seen: requested counts only grow",
            alternatives: [.init("every kernel", [.fn("free_irq")])]),
        FamilySpec(
            name: "irte_alloc",
            summary: "interrupt remapping entries allocated (Intel VT-d, AMD-Vi)",
            cost: "no IRTE counts; cannot tell when IRTEs are allocated",
            alternatives: [.init("every kernel: Intel's and AMD's irq domain ops (static, called through pointers)",
                                 [.fn("intel_irq_remapping_alloc"), .fn("irq_remapping_alloc")])]),
        FamilySpec(
            name: "irte_free",
            summary: "interrupt remapping entries freed",
            cost: "IRTE counts only grow",
            alternatives: [.init("every kernel: Intel's and AMD's irq domain ops",
                                 [.fn("intel_irq_remapping_free", returns: false), .fn("irq_remapping_free", returns: false)])]),
        FamilySpec(
            name: "irte_activate",
            summary: "IRTE programmed (reservation at allocation, real vector at request_irq) and cleared",
            cost: "IRTE (re)programming steps are not seen",
            alternatives: [.init("every kernel: Intel's and AMD's irq domain ops", [
                .fn("intel_irq_remapping_activate"), .fn("irq_remapping_activate"),
                .fn("intel_irq_remapping_deactivate", returns: false), .fn("irq_remapping_deactivate", returns: false),
            ])]),
        FamilySpec(
            name: "irte_posted",
            summary: "IRTE switched to posted mode (delivered straight to a vCPU) or back",
            cost: "posted vectors are not told apart: host delivery counts look low for posted guests",
            alternatives: [.init("every kernel: the remapping irq chips' irq_set_vcpu_affinity",
                                 [.fn("intel_ir_set_vcpu_affinity"), .fn("amd_ir_set_vcpu_affinity")])]),
        FamilySpec(
            name: "kvm_posted",
            summary: "KVM posted-interrupt IRTE updates per host irq",
            cost: "KVM's view of posted interrupts is not seen",
            alternatives: [.init("every kernel; tp_btf needs module BTF (5.11, 36e68442d1af); its record changes with c5af31698d71 (BPF/compat.h)",
                                 [.tp("kvm", "kvm_pi_irte_update", module: "kvm")])]),
        FamilySpec(
            name: "vfio",
            summary: "VFIO_DEVICE_SET_IRQS from VMMs: index, start, count, flags",
            cost: "guest-driven enables and disables cannot be classified (resize vs. new vector)",
            alternatives: [.init("5.15+: vfio_pci_core is split out of vfio_pci (7fa005caa35e); fexit needs module BTF (5.11)",
                                 [.fn("vfio_pci_set_irqs_ioctl", module: "vfio_pci_core")])]),
    ]
}
