/* What the BPF side knows about kernel versions, in one place (in the spirit of libbpf-tools'
 * core_fixes.bpf.h): every CO-RE check that tells kernels apart is here, with the change that
 * motivates it. Which function is hooked on which kernel is user space's choice
 * (Sources/Kernel/HookCatalog.swift, whose alternatives carry notes of the same kind). */
#ifndef IRQSCOPE_COMPAT_H
#define IRQSCOPE_COMPAT_H

/* 6.2, f2480e7dacdc "genirq/msi: Provide new domain id allocation functions": struct msi_ctrl
 * appears, and __msi_domain_alloc_irqs / __msi_domain_free_irqs go from (domain, dev, nvec) /
 * (domain, dev) to (dev, domain, ctrl). */
static __always_inline bool compat_msi_has_ctrl(void)
{
    return bpf_core_type_exists(struct msi_ctrl);
}

/* 5.17, "genirq/msi: Consolidate MSI descriptor data": msi_desc::msi_index. Before it the
 * index sat in bus-specific unions, which irqscope does not read (UINT_MAX: unknown). */
static __always_inline u32 compat_msi_index(struct msi_desc *desc)
{
    if (bpf_core_field_exists(desc->msi_index))
        return BPF_CORE_READ(desc, msi_index);
    return 0xffffffffu;
}

/* c5af31698d71 "KVM: x86: Move posted interrupt tracepoint to common code" (2025: in 7.x, not
 * in 6.12): kvm_pi_irte_update loses pi_desc_addr and vcpu_id becomes a vcpu pointer's id, so
 * `set` moves from argument 5 to argument 4. */
static __always_inline bool compat_pi_irte_update_has_pi_desc_addr(void)
{
    return bpf_core_field_exists(struct trace_event_raw_kvm_pi_irte_update, pi_desc_addr);
}

#endif
