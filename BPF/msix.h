/* PCI MSI-X enable, dynamic add and disable. */

#define PCI_IRQ_MSIX (1u << 2)

static __always_inline int emit_msix_enable(struct pci_dev *dev, s32 min, s32 max, u32 flags, s32 ret, u32 source)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_MSIX_ENABLE, source);
    if (!e)
        return 0;
    set_pci_device(e, dev);
    e->u.msix_range.min_vecs = min;
    e->u.msix_range.max_vecs = max;
    e->u.msix_range.flags = flags;
    e->result = ret;
    event_submit(e);
    return 0;
}

/* __pci_enable_msix_range(dev, entries, minvec, maxvec, affd, flags): the funnel every
 * MSI-X bulk enable goes through. */
static __always_inline int on_pci_enable_msix_range_internal(const u64 *a, u64 ret)
{
    return emit_msix_enable((struct pci_dev *)a[0], (s32)a[2], (s32)a[3], (u32)a[5], (s32)ret,
                            IRQSCOPE_SRC_PCI_ENABLE_MSIX_RANGE_INTERNAL);
}
HOOK_RETURN(__pci_enable_msix_range, IRQSCOPE_SRC_PCI_ENABLE_MSIX_RANGE_INTERNAL,
            on_pci_enable_msix_range_internal)

/* Where __pci_enable_msix_range is inlined: its two exported callers. */
/* pci_alloc_irq_vectors_affinity(dev, min_vecs, max_vecs, flags, affd) */
static __always_inline int on_pci_alloc_irq_vectors(const u64 *a, u64 ret)
{
    u32 flags = (u32)a[3];
    if (!(flags & PCI_IRQ_MSIX))
        return 0;
    return emit_msix_enable((struct pci_dev *)a[0], (s32)a[1], (s32)a[2], flags, (s32)ret,
                            IRQSCOPE_SRC_PCI_ALLOC_IRQ_VECTORS);
}
HOOK_RETURN(pci_alloc_irq_vectors_affinity, IRQSCOPE_SRC_PCI_ALLOC_IRQ_VECTORS, on_pci_alloc_irq_vectors)

/* pci_enable_msix_range(dev, entries, minvec, maxvec) */
static __always_inline int on_pci_enable_msix_range(const u64 *a, u64 ret)
{
    return emit_msix_enable((struct pci_dev *)a[0], (s32)a[2], (s32)a[3], PCI_IRQ_MSIX, (s32)ret,
                            IRQSCOPE_SRC_PCI_ENABLE_MSIX_RANGE);
}
HOOK_RETURN(pci_enable_msix_range, IRQSCOPE_SRC_PCI_ENABLE_MSIX_RANGE, on_pci_enable_msix_range)

/* pci_msix_alloc_irq_at(dev, index, affdesc) returns struct msi_map {int index; int virq;}
 * in RAX: index in the low half (negative errno on failure), virq in the high half. */
static __always_inline int on_pci_msix_alloc_irq_at(const u64 *a, u64 ret)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_MSIX_ADD, IRQSCOPE_SRC_PCI_MSIX_ALLOC_IRQ_AT);
    if (!e)
        return 0;
    s32 index = (s32)(ret & 0xffffffff);
    s32 virq = (s32)(ret >> 32);
    set_pci_device(e, (struct pci_dev *)a[0]);
    e->u.msix_add.index_requested = (u32)a[1];
    e->u.msix_add.index_allocated = index < 0 ? -1 : index;
    e->result = index < 0 ? index : virq;
    if (index >= 0)
        e->irq = virq;
    event_submit(e);
    return 0;
}
HOOK_RETURN_KPROBE_ONLY(pci_msix_alloc_irq_at, IRQSCOPE_SRC_PCI_MSIX_ALLOC_IRQ_AT, on_pci_msix_alloc_irq_at)

/* Disable: only when MSI-X is actually on (pci_disable_msix is also called for MSI users). */
static __always_inline int emit_msix_disable(struct pci_dev *dev, u32 source)
{
    if (!BPF_CORE_READ_BITFIELD_PROBED(dev, msix_enabled))
        return 0;
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_MSIX_DISABLE, source);
    if (!e)
        return 0;
    set_pci_device(e, dev);
    event_submit(e);
    return 0;
}

/* pci_msix_shutdown(dev), 6.6+: the point where MSI-X ENABLE is cleared. */
static __always_inline int on_pci_msix_shutdown(const u64 *a, u64 ret)
{
    return emit_msix_disable((struct pci_dev *)a[0], IRQSCOPE_SRC_PCI_MSIX_SHUTDOWN);
}
HOOK_ENTRY(pci_msix_shutdown, on_pci_msix_shutdown)

static __always_inline int on_pci_disable_msix(const u64 *a, u64 ret)
{
    return emit_msix_disable((struct pci_dev *)a[0], IRQSCOPE_SRC_PCI_DISABLE_MSIX);
}
HOOK_ENTRY(pci_disable_msix, on_pci_disable_msix)

static __always_inline int on_pci_free_irq_vectors(const u64 *a, u64 ret)
{
    return emit_msix_disable((struct pci_dev *)a[0], IRQSCOPE_SRC_PCI_FREE_IRQ_VECTORS);
}
HOOK_ENTRY(pci_free_irq_vectors, on_pci_free_irq_vectors)
