/* request_irq (an inline wrapper of request_threaded_irq) and free_irq: where a CPU vector
 * is really taken and given back. */

static __always_inline int emit_irq_request(u32 type, u32 source, u32 irq, u64 flags, const char *name, s64 result)
{
    struct irqscope_event *e = event_reserve(type, source);
    if (!e)
        return 0;
    e->irq = irq;
    e->result = result;
    e->u.irq_request.flags = flags;
    if (name)
        bpf_probe_read_kernel_str(e->u.irq_request.name, sizeof(e->u.irq_request.name), name);
    event_submit(e);
    return 0;
}

/* request_threaded_irq(irq, handler, thread_fn, irqflags, devname, dev_id) */
static __always_inline int on_request_threaded_irq(const u64 *a, u64 ret)
{
    return emit_irq_request(IRQSCOPE_EV_REQUEST_IRQ, IRQSCOPE_SRC_REQUEST_THREADED_IRQ, (u32)a[0], a[3],
                            (const char *)a[4], (s32)ret);
}
HOOK_RETURN(request_threaded_irq, IRQSCOPE_SRC_REQUEST_THREADED_IRQ, on_request_threaded_irq)

/* free_irq(irq, dev_id) returns the devname it was requested with. */
static __always_inline int on_free_irq(const u64 *a, u64 ret)
{
    return emit_irq_request(IRQSCOPE_EV_FREE_IRQ, IRQSCOPE_SRC_FREE_IRQ, (u32)a[0], counted_so_far((u32)a[0]),
                            (const char *)ret, 0);
}
HOOK_RETURN(free_irq, IRQSCOPE_SRC_FREE_IRQ, on_free_irq)
