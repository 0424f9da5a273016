/* VFIO (module vfio_pci_core) and KVM posted interrupts (module kvm). */

/* vfio_pci_set_irqs_ioctl(vdev, flags, index, start, count, data): every VFIO_DEVICE_SET_IRQS,
 * in the context of the VMM thread that issued it. */
static __always_inline int on_vfio_set_irqs(const u64 *a, u64 ret)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_VFIO_SET_IRQS, IRQSCOPE_SRC_VFIO_PCI_SET_IRQS_IOCTL);
    if (!e)
        return 0;
    set_pci_device(e, BPF_CORE_READ((struct vfio_pci_core_device *)a[0], pdev));
    e->u.vfio.flags = (u32)a[1];
    e->u.vfio.index = (u32)a[2];
    e->u.vfio.start = (u32)a[3];
    e->u.vfio.count = (u32)a[4];
    e->result = (s32)ret;
    event_submit(e);
    return 0;
}
HOOK_RETURN(vfio_pci_set_irqs_ioctl, IRQSCOPE_SRC_VFIO_PCI_SET_IRQS_IOCTL, on_vfio_set_irqs)

/* kvm_pi_irte_update: (host_irq, vcpu_id, gsi, gvec, pi_desc_addr, set), or
 * (host_irq, vcpu, gsi, gvec, set) once pi_desc_addr left the record (compat.h). */
static __always_inline int on_kvm_pi_irte_update(u64 *ctx)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_PI_UPDATE, IRQSCOPE_SRC_TRACEPOINT);
    if (!e)
        return 0;
    e->irq = (u32)ctx[0];
    e->u.pi_update.gsi = (u32)ctx[2];
    e->u.pi_update.gvec = (u32)ctx[3];
    if (compat_pi_irte_update_has_pi_desc_addr()) {
        e->u.pi_update.vcpu_id = (u32)ctx[1];
        e->u.pi_update.set = (u8)CTX_ARG(ctx, 5);
    } else {
        e->u.pi_update.vcpu_id = UINT_MAX_U32;
        e->u.pi_update.set = (u8)CTX_ARG(ctx, 4);
    }
    event_submit(e);
    return 0;
}
TRACEPOINT(kvm_pi_irte_update, on_kvm_pi_irte_update)
