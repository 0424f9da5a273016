/* The generic MSI domain layer (kernel/irq/msi.c): interrupt descriptors for a device. */

static __always_inline struct irqscope_event *msi_event(u32 type, u32 source, struct device *dev)
{
    struct irqscope_event *e = event_reserve(type, source);
    if (!e)
        return NULL;
    if (dev)
        set_device(e, dev);
    return e;
}

/* One MSI_ALLOC event, with what the variant knows: UINT_MAX first and last when it does not say. */
static __always_inline int emit_msi_alloc(u32 source, struct device *dev, u32 domid, u32 first, u32 last,
                                          u32 count, u64 ret)
{
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_ALLOC, source, dev);
    if (!e)
        return 0;
    e->u.msi_domain.domid = domid;
    e->u.msi_domain.first = first;
    e->u.msi_domain.last = last;
    e->u.msi_domain.count = count;
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}

/* __msi_domain_alloc_irqs and __msi_domain_free_irqs: (domain, dev[, nvec]) up to 6.1, (dev,
 * domain, ctrl) from 6.2 (compat.h). The device, and the range and count the call covers. */
static __always_inline struct device *msi_internal_args(const u64 *a, struct irqscope_msi_domain *r)
{
    u64 a0 = CTX_ARG(a, 0), a1 = CTX_ARG(a, 1);
    r->domid = 0;
    r->first = UINT_MAX_U32;
    r->last = UINT_MAX_U32;
    r->count = (u32)a[2];
    if (!compat_msi_has_ctrl())
        return (struct device *)a1;
    struct msi_ctrl *ctrl = (struct msi_ctrl *)a[2];
    r->domid = BPF_CORE_READ(ctrl, domid);
    r->first = BPF_CORE_READ(ctrl, first);
    r->last = BPF_CORE_READ(ctrl, last);
    r->count = BPF_CORE_READ(ctrl, nirqs);
    return (struct device *)a0;
}

/* Both the bulk and the dynamic path converge here. */
static __always_inline int on_msi_alloc_internal(const u64 *a, u64 ret)
{
    struct irqscope_msi_domain r;
    struct device *dev = msi_internal_args(a, &r);
    return emit_msi_alloc(IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_INTERNAL, dev, r.domid, r.first, r.last, r.count, ret);
}
HOOK_RETURN(__msi_domain_alloc_irqs, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_INTERNAL, on_msi_alloc_internal)

/* 6.1: msi_domain_alloc_irqs_descs_locked(domain, dev, nvec) */
static __always_inline int on_msi_alloc_descs_locked(const u64 *a, u64 ret)
{
    return emit_msi_alloc(IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_DESCS_LOCKED, (struct device *)a[1], 0, UINT_MAX_U32,
                          UINT_MAX_U32, (u32)a[2], ret);
}
HOOK_RETURN(msi_domain_alloc_irqs_descs_locked, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_DESCS_LOCKED, on_msi_alloc_descs_locked)

/* 6.2+: msi_domain_alloc_irqs_all_locked(dev, domid, nirqs) */
static __always_inline int on_msi_alloc_all_locked(const u64 *a, u64 ret)
{
    return emit_msi_alloc(IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_ALL_LOCKED, (struct device *)a[0], (u32)a[1], UINT_MAX_U32,
                          UINT_MAX_U32, (u32)a[2], ret);
}
HOOK_RETURN(msi_domain_alloc_irqs_all_locked, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_ALL_LOCKED, on_msi_alloc_all_locked)

/* 6.2+: msi_domain_alloc_irqs_range_locked(dev, domid, first, last) */
static __always_inline int on_msi_alloc_range_locked(const u64 *a, u64 ret)
{
    return emit_msi_alloc(IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_RANGE_LOCKED, (struct device *)a[0], (u32)a[1], (u32)a[2],
                          (u32)a[3], (u32)a[3] - (u32)a[2] + 1, ret);
}
HOOK_RETURN(msi_domain_alloc_irqs_range_locked, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_RANGE_LOCKED, on_msi_alloc_range_locked)

/* The irqs a thread's MSI domain frees (msi_domain_free, once per descriptor) add up here until
 * the descriptor free that caused them returns: the kernel's free functions name a device and an
 * index range, not how many irqs went or which. */
struct msi_freed {
    u32 count;
    u32 first_irq;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 1024);
    __type(key, u64);
    __type(value, struct msi_freed);
} msi_freed SEC(".maps");

static __always_inline void note_irqs_freed(u32 irq, u32 nr)
{
    u64 id = bpf_get_current_pid_tgid();
    struct msi_freed *f = bpf_map_lookup_elem(&msi_freed, &id);
    if (!f) {
        struct msi_freed first = {.count = nr, .first_irq = irq};
        bpf_map_update_elem(&msi_freed, &id, &first, BPF_ANY);
        return;
    }
    f->count += nr;
    if (irq < f->first_irq)
        f->first_irq = irq;
}

/* At the return of a descriptor free: the irqs it released (count 0 when none, or when the
 * msi_irqs family is not attached), with the index range the variant names (UINT_MAX when it
 * names none). */
static __always_inline int emit_msi_free(u32 source, struct device *dev, bool only_if_freed, u32 domid, u32 first,
                                         u32 last)
{
    u64 id = bpf_get_current_pid_tgid();
    struct msi_freed f = {};
    struct msi_freed *p = bpf_map_lookup_elem(&msi_freed, &id);
    if (p) {
        f = *p;
        bpf_map_delete_elem(&msi_freed, &id);
    }
    if (only_if_freed && f.count == 0)
        return 0;
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_FREE, source, dev);
    if (!e)
        return 0;
    e->u.msi_domain.count = f.count;
    if (f.count)
        e->irq = f.first_irq;
    e->u.msi_domain.domid = domid;
    e->u.msi_domain.first = first;
    e->u.msi_domain.last = last;
    event_submit(e);
    return 0;
}

static __always_inline int on_msi_free_internal(const u64 *a, u64 ret)
{
    struct irqscope_msi_domain r;
    struct device *dev = msi_internal_args(a, &r);
    return emit_msi_free(IRQSCOPE_SRC_MSI_DOMAIN_FREE_INTERNAL, dev, false, r.domid, r.first, r.last);
}
HOOK_RETURN(__msi_domain_free_irqs, IRQSCOPE_SRC_MSI_DOMAIN_FREE_INTERNAL, on_msi_free_internal)

/* 6.1: msi_domain_free_irqs_descs_locked(domain, dev) */
static __always_inline int on_msi_free_descs_locked(const u64 *a, u64 ret)
{
    return emit_msi_free(IRQSCOPE_SRC_MSI_DOMAIN_FREE_DESCS_LOCKED, (struct device *)a[1], false, 0, UINT_MAX_U32,
                         UINT_MAX_U32);
}
HOOK_RETURN(msi_domain_free_irqs_descs_locked, IRQSCOPE_SRC_MSI_DOMAIN_FREE_DESCS_LOCKED, on_msi_free_descs_locked)

/* 6.2+: msi_domain_free_irqs_all_locked(dev, domid), what MSI-X shutdown calls. It calls
 * _range_locked, which Debian's 6.12 inlines there; where it does not, the inner call has
 * already reported the irqs and this one stays quiet. */
static __always_inline int on_msi_free_all_locked(const u64 *a, u64 ret)
{
    return emit_msi_free(IRQSCOPE_SRC_MSI_DOMAIN_FREE_ALL_LOCKED, (struct device *)a[0], true, (u32)a[1], 0, UINT_MAX_U32);
}
HOOK_RETURN(msi_domain_free_irqs_all_locked, IRQSCOPE_SRC_MSI_DOMAIN_FREE_ALL_LOCKED, on_msi_free_all_locked)

/* 6.2+: msi_domain_free_irqs_range_locked(dev, domid, first, last) */
static __always_inline int on_msi_free_range_locked(const u64 *a, u64 ret)
{
    return emit_msi_free(IRQSCOPE_SRC_MSI_DOMAIN_FREE_RANGE_LOCKED, (struct device *)a[0], false, (u32)a[1], (u32)a[2],
                         (u32)a[3]);
}
HOOK_RETURN(msi_domain_free_irqs_range_locked, IRQSCOPE_SRC_MSI_DOMAIN_FREE_RANGE_LOCKED, on_msi_free_range_locked)

/* msi_domain_alloc(domain, virq, nr_irqs, arg) and msi_domain_free(domain, virq, nr_irqs):
 * the MSI domain's .alloc/.free ops, once per MSI descriptor, with or without interrupt
 * remapping: which irq numbers belong to which device. */
static __always_inline int on_msi_domain_alloc(const u64 *a, u64 ret)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_IRQ_ALLOC, IRQSCOPE_SRC_MSI_DOMAIN_OPS);
    if (!e)
        return 0;
    e->irq = (u32)a[1];
    e->u.irq_range.nr_irqs = (u32)a[2];
    e->u.irq_range.msi_index = set_alloc_info_device(e, (struct irq_alloc_info *)a[3]);
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}
HOOK_RETURN(msi_domain_alloc, IRQSCOPE_SRC_MSI_DOMAIN_OPS, on_msi_domain_alloc)

static __always_inline int on_msi_domain_free(const u64 *a, u64 ret)
{
    note_irqs_freed((u32)a[1], (u32)a[2]);
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_IRQ_FREE, IRQSCOPE_SRC_MSI_DOMAIN_OPS);
    if (!e)
        return 0;
    e->irq = (u32)a[1];
    e->u.irq_range.nr_irqs = (u32)a[2];
    event_submit(e);
    return 0;
}
HOOK_ENTRY(msi_domain_free, on_msi_domain_free)
