/* The generic MSI domain layer (kernel/irq/msi.c): interrupt descriptors for a device. */

static __always_inline struct irqscope_event *msi_event(u32 type, u32 source, struct device *dev)
{
    struct irqscope_event *e = event_reserve(type, source);
    if (!e)
        return NULL;
    if (dev)
        set_device(e, dev);
    e->u.msi_domain.first = UINT_MAX_U32;
    e->u.msi_domain.last = UINT_MAX_U32;
    return e;
}

static __always_inline void set_ctrl(struct irqscope_event *e, struct msi_ctrl *ctrl)
{
    e->u.msi_domain.domid = BPF_CORE_READ(ctrl, domid);
    e->u.msi_domain.first = BPF_CORE_READ(ctrl, first);
    e->u.msi_domain.last = BPF_CORE_READ(ctrl, last);
    e->u.msi_domain.count = BPF_CORE_READ(ctrl, nirqs);
}

/* __msi_domain_alloc_irqs: (domain, dev, nvec) up to 6.1; (dev, domain, ctrl) from 6.2,
 * when struct msi_ctrl appeared. Both the bulk and the dynamic path converge here. */
static __always_inline int on_msi_alloc_internal(const u64 *a, u64 ret)
{
    bool has_ctrl = bpf_core_type_exists(struct msi_ctrl);
    u64 a0 = CTX_ARG(a, 0), a1 = CTX_ARG(a, 1);
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_ALLOC, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_INTERNAL,
                                         (struct device *)(has_ctrl ? a0 : a1));
    if (!e)
        return 0;
    if (has_ctrl)
        set_ctrl(e, (struct msi_ctrl *)a[2]);
    else
        e->u.msi_domain.count = (u32)a[2];
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}
HOOK_RETURN(__msi_domain_alloc_irqs, 3, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_INTERNAL, on_msi_alloc_internal)

/* 6.1: msi_domain_alloc_irqs_descs_locked(domain, dev, nvec) */
static __always_inline int on_msi_alloc_descs_locked(const u64 *a, u64 ret)
{
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_ALLOC, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_DESCS_LOCKED,
                                         (struct device *)a[1]);
    if (!e)
        return 0;
    e->u.msi_domain.count = (u32)a[2];
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}
HOOK_RETURN(msi_domain_alloc_irqs_descs_locked, 3, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_DESCS_LOCKED,
            on_msi_alloc_descs_locked)

/* 6.2+: msi_domain_alloc_irqs_all_locked(dev, domid, nirqs) */
static __always_inline int on_msi_alloc_all_locked(const u64 *a, u64 ret)
{
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_ALLOC, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_ALL_LOCKED,
                                         (struct device *)a[0]);
    if (!e)
        return 0;
    e->u.msi_domain.domid = (u32)a[1];
    e->u.msi_domain.count = (u32)a[2];
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}
HOOK_RETURN(msi_domain_alloc_irqs_all_locked, 3, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_ALL_LOCKED,
            on_msi_alloc_all_locked)

/* 6.2+: msi_domain_alloc_irqs_range_locked(dev, domid, first, last) */
static __always_inline int on_msi_alloc_range_locked(const u64 *a, u64 ret)
{
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_ALLOC, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_RANGE_LOCKED,
                                         (struct device *)a[0]);
    if (!e)
        return 0;
    e->u.msi_domain.domid = (u32)a[1];
    e->u.msi_domain.first = (u32)a[2];
    e->u.msi_domain.last = (u32)a[3];
    e->u.msi_domain.count = (u32)a[3] - (u32)a[2] + 1;
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}
HOOK_RETURN(msi_domain_alloc_irqs_range_locked, 4, IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_RANGE_LOCKED,
            on_msi_alloc_range_locked)

/* __msi_domain_free_irqs: (domain, dev) up to 6.1; (dev, domain, ctrl) from 6.2. */
static __always_inline int on_msi_free_internal(const u64 *a, u64 ret)
{
    bool has_ctrl = bpf_core_type_exists(struct msi_ctrl);
    u64 a0 = CTX_ARG(a, 0), a1 = CTX_ARG(a, 1);
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_FREE, IRQSCOPE_SRC_MSI_DOMAIN_FREE_INTERNAL,
                                         (struct device *)(has_ctrl ? a0 : a1));
    if (!e)
        return 0;
    if (has_ctrl)
        set_ctrl(e, (struct msi_ctrl *)a[2]);
    event_submit(e);
    return 0;
}
HOOK_ENTRY(__msi_domain_free_irqs, on_msi_free_internal)

/* 6.1: msi_domain_free_irqs_descs_locked(domain, dev) */
static __always_inline int on_msi_free_descs_locked(const u64 *a, u64 ret)
{
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_FREE, IRQSCOPE_SRC_MSI_DOMAIN_FREE_DESCS_LOCKED,
                                         (struct device *)a[1]);
    if (e)
        event_submit(e);
    return 0;
}
HOOK_ENTRY(msi_domain_free_irqs_descs_locked, on_msi_free_descs_locked)

/* 6.2+: msi_domain_free_irqs_range_locked(dev, domid, first, last); _all_locked calls it. */
static __always_inline int on_msi_free_range_locked(const u64 *a, u64 ret)
{
    struct irqscope_event *e = msi_event(IRQSCOPE_EV_MSI_FREE, IRQSCOPE_SRC_MSI_DOMAIN_FREE_RANGE_LOCKED,
                                         (struct device *)a[0]);
    if (!e)
        return 0;
    e->u.msi_domain.domid = (u32)a[1];
    e->u.msi_domain.first = (u32)a[2];
    e->u.msi_domain.last = (u32)a[3];
    event_submit(e);
    return 0;
}
HOOK_ENTRY(msi_domain_free_irqs_range_locked, on_msi_free_range_locked)

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
HOOK_RETURN(msi_domain_alloc, 4, IRQSCOPE_SRC_MSI_DOMAIN_OPS, on_msi_domain_alloc)

static __always_inline int on_msi_domain_free(const u64 *a, u64 ret)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_IRQ_FREE, IRQSCOPE_SRC_MSI_DOMAIN_OPS);
    if (!e)
        return 0;
    e->irq = (u32)a[1];
    e->u.irq_range.nr_irqs = (u32)a[2];
    event_submit(e);
    return 0;
}
HOOK_ENTRY(msi_domain_free, on_msi_domain_free)
