/* Interrupt delivery: the per-interrupt hot path. Aggregated in per-CPU arrays, never
 * sent through the ring buffer. */

/* Indexed by irq number. User space sizes it before load (bpf_map__set_max_entries)
 * from the irq numbers the host uses; interrupts beyond it are counted as untracked. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, struct irqscope_irq_count);
} irq_counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, IRQSCOPE_SPURIOUS_VECTORS);
    __type(key, u32);
    __type(value, u64);
} spurious_counts SEC(".maps");

/* The rare path: an unhandled interrupt (on an MSI vector it never happens; on a shared line it
 * is another device's interrupt, or one nobody will ever handle). Its time matters (did it happen
 * while a device's MSI-X was off?), so it is reported through the ring buffer, batched per irq
 * and CPU so that a storm costs one event per IRQSCOPE_UNHANDLED_REPORT_NS. */
static __noinline int report_unhandled(u32 irq, struct irqscope_irq_count *c)
{
    u64 now = bpf_ktime_get_ns();
    if (now < c->next_report_ns)
        return 0;
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_UNHANDLED, IRQSCOPE_SRC_TRACEPOINT);
    if (!e)
        return 0;
    e->irq = irq;
    e->u.unhandled.count = c->unhandled - c->unhandled_reported;
    c->unhandled_reported = c->unhandled;
    c->next_report_ns = now + IRQSCOPE_UNHANDLED_REPORT_NS;
    event_submit(e);
    return 0;
}

/* irq_handler_exit runs once per action. An interrupt is complete after the last action
 * of the chain (next == NULL); it was unhandled when every action returned IRQ_NONE,
 * which is what the kernel's note_interrupt() counts. A CPU runs one irq's chain at a
 * time, so the per-CPU slot can carry the OR of the return values across the chain. */
static __always_inline int count_interrupt(u32 irq, struct irqaction *next, int ret)
{
    struct irqscope_irq_count *c = bpf_map_lookup_elem(&irq_counts, &irq);
    if (!c) {
        if (!next)
            counter_inc(IRQSCOPE_CTR_IRQ_UNTRACKED);
        return 0;
    }
    if (next) {
        c->ret_acc |= ret;
        return 0;
    }
    c->interrupts++;
    if (!(c->ret_acc | ret)) {
        c->unhandled++;
        report_unhandled(irq, c);
    }
    if (c->ret_acc)
        c->ret_acc = 0;
    return 0;
}

/* tp_btf reads action->next directly: one load, no helper call on the hot path. */
SEC("tp_btf/irq_handler_exit")
int BPF_PROG(tp_btf__irq_handler_exit, int irq, struct irqaction *action, int ret)
{
    return count_interrupt(irq, action->next, ret);
}

SEC("raw_tp/irq_handler_exit")
int raw_tp__irq_handler_exit(u64 *ctx)
{
    struct irqaction *action = (struct irqaction *)ctx[1];
    return count_interrupt((u32)ctx[0], BPF_CORE_READ(action, next), (int)ctx[2]);
}

/* An interrupt on a vector with no handler: 0xef is the "shutdown" vector MSI entries are
 * parked on between allocation and request_irq. */
static __always_inline int on_spurious(u64 *ctx)
{
    u32 vector = (u32)ctx[0] & 0xff;
    u64 *c = bpf_map_lookup_elem(&spurious_counts, &vector);
    if (c)
        (*c)++;
    return 0;
}
TRACEPOINT(spurious_apic_entry, on_spurious)
