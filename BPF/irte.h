/* Interrupt remapping table entries: Intel VT-d and AMD-Vi. Both drivers are built into
 * distribution kernels; only the active IOMMU's functions run. */

/* *_alloc(domain, virq, nr_irqs, arg): arg is the x86 struct irq_alloc_info. */
static __always_inline int emit_irte_alloc(const u64 *a, u64 ret, u32 source)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_IRTE_ALLOC, source);
    if (!e)
        return 0;
    e->irq = (u32)a[1];
    e->u.irte.nr_irqs = (u32)a[2];
    e->u.irte.hwirq_index = set_alloc_info_device(e, (struct irq_alloc_info *)a[3]);
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}

/* *_free(domain, virq, nr_irqs) */
static __always_inline int emit_irte_free(const u64 *a, u32 source)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_IRTE_FREE, source);
    if (!e)
        return 0;
    e->irq = (u32)a[1];
    e->u.irte.nr_irqs = (u32)a[2];
    event_submit(e);
    return 0;
}

/* An IRTE (re)programmed for an irq: activated, deactivated, or switched to or from posted mode. */
static __always_inline int emit_irte_state(u32 type, struct irq_data *d, u32 reserve, u32 posted, s64 ret, u32 source)
{
    struct irqscope_event *e = event_reserve(type, source);
    if (!e)
        return 0;
    e->irq = BPF_CORE_READ(d, irq);
    set_irq_data_device(e, d);
    e->u.irte.reserve = reserve;
    e->u.irte.posted = posted;
    e->result = ret;
    event_submit(e);
    return 0;
}

/* Intel's and AMD's irq domain ops have the same signatures:
 * - *_activate(domain, irq_data, reserve): at allocation (reserve=1, entry parked on the shutdown
 *   vector) and again at request_irq (reserve=0, the real vector);
 * - *_deactivate(domain, irq_data): free_irq of the last action; the entry is cleared. */
#define IRTE_DOMAIN_OPS(prefix, source)                                                        \
    static __always_inline int on_##prefix##alloc(const u64 *a, u64 ret)                       \
    {                                                                                          \
        return emit_irte_alloc(a, ret, source);                                                \
    }                                                                                          \
    HOOK_RETURN(prefix##alloc, source, on_##prefix##alloc)                                     \
    static __always_inline int on_##prefix##free(const u64 *a, u64 ret)                        \
    {                                                                                          \
        return emit_irte_free(a, source);                                                      \
    }                                                                                          \
    HOOK_ENTRY(prefix##free, on_##prefix##free)                                                \
    static __always_inline int on_##prefix##activate(const u64 *a, u64 ret)                   \
    {                                                                                          \
        return emit_irte_state(IRQSCOPE_EV_IRTE_ACTIVATE, (struct irq_data *)a[1], (u8)a[2], 0, \
                               (s32)ret, source);                                              \
    }                                                                                          \
    HOOK_RETURN(prefix##activate, source, on_##prefix##activate)                               \
    static __always_inline int on_##prefix##deactivate(const u64 *a, u64 ret)                  \
    {                                                                                          \
        return emit_irte_state(IRQSCOPE_EV_IRTE_DEACTIVATE, (struct irq_data *)a[1], 0, 0, 0, source); \
    }                                                                                          \
    HOOK_ENTRY(prefix##deactivate, on_##prefix##deactivate)

IRTE_DOMAIN_OPS(intel_irq_remapping_, IRQSCOPE_SRC_INTEL_IR)
IRTE_DOMAIN_OPS(irq_remapping_, IRQSCOPE_SRC_AMD_IR)

/* *_set_vcpu_affinity(irq_data, info): KVM posts the interrupt straight to a vCPU (info set)
 * or takes it back to remapped delivery (Intel: info NULL; AMD: !is_guest_mode). */
static __always_inline int on_intel_posted(const u64 *a, u64 ret)
{
    return emit_irte_state(IRQSCOPE_EV_IRTE_POSTED, (struct irq_data *)a[0], 0, a[1] != 0, (s32)ret, IRQSCOPE_SRC_INTEL_IR);
}
static __always_inline int on_amd_posted(const u64 *a, u64 ret)
{
    struct amd_iommu_pi_data *pi = (struct amd_iommu_pi_data *)a[1];
    return emit_irte_state(IRQSCOPE_EV_IRTE_POSTED, (struct irq_data *)a[0], 0, pi && BPF_CORE_READ(pi, is_guest_mode),
                           (s32)ret, IRQSCOPE_SRC_AMD_IR);
}
HOOK_RETURN(intel_ir_set_vcpu_affinity, IRQSCOPE_SRC_INTEL_IR, on_intel_posted)
HOOK_RETURN(amd_ir_set_vcpu_affinity, IRQSCOPE_SRC_AMD_IR, on_amd_posted)
