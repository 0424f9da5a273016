/* Interrupt delivery: the per-interrupt hot path. Aggregated per CPU in the kernel, never
 * sent through the ring buffer. */

/* Per-CPU slices of one array, [cpu][irq]: the slice of the running CPU is the only one it
 * writes. Not a per-CPU array map: its lookup loads the element's per-CPU pointer from the map
 * first, a second cache line per interrupt. The slice size must be an immediate for the same
 * reason (a `const volatile` is a load from .rodata), so the programs exist once per size and
 * user space loads the one for the size it chose from the irq numbers the host uses
 * (IRQSCOPE_IRQ_SLOTS_*), after setting max_entries to possible CPUs x slots. Interrupts on
 * irqs beyond it are counted as untracked. Mmapable only for the page-aligned values: slices
 * then never share a cache line. docs/architecture.md has the measurements. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, IRQSCOPE_IRQ_SLOTS_MIN);
    __type(key, u32);
    __type(value, struct irqscope_irq_count);
} irq_counts SEC(".maps");

/* What user space chose (slots) and found (possible CPUs): the one program that writes every
 * CPU's slice, arm_first, needs them at run time. Written once, before attaching. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct irqscope_geometry);
} geometry SEC(".maps");

/* arm_first's and counted_so_far's loop bound: possible CPUs (capped), set by user space before
 * loading. The verifier walks a bounded loop once per iteration, and each state it keeps at the
 * loop head is compared with every later one: with the constant 1024 that was 130-280 ms of
 * verifier time for vector_activate alone, on a 2-CPU host. Read-only data is a known constant
 * to the verifier, so it unrolls only as many iterations as the host has CPUs. */
const volatile u32 arm_cpus = IRQSCOPE_ARM_CPUS_MAX;

/* Not per CPU: spurious interrupts are rare enough for an atomic add, and a per-CPU array is
 * a value per vector and possible CPU that every scrape copies (512 KiB at 256 CPUs). Mmapable:
 * a scrape reads it in place, where a batch lookup (an element at a time inside the kernel) was
 * a third of a scrape's CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
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

/* The irq's first handled interrupt since its vector was activated: each CPU's slot is armed
 * at activation (arm_first), and the first interrupt a CPU handles after that reports it, so
 * the common case pays one load from the line it already holds. Each CPU that takes the irq
 * reports once; user space keeps the earliest. */
static __noinline int report_first(u32 irq, struct irqscope_irq_count *c)
{
    c->first_armed = 0;
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_FIRST_IRQ, IRQSCOPE_SRC_TRACEPOINT);
    if (!e)
        return 0;
    e->irq = irq;
    event_submit(e);
    return 0;
}

/* From irq_vectors:vector_activate, which runs before request_irq installs the handler. Writes
 * a field of other CPUs' slots that only report_first on that CPU clears: no increment is
 * lost, each word has one writer at a time. */
static __always_inline void arm_first(u32 irq)
{
    u32 zero = 0;
    struct irqscope_geometry *g = bpf_map_lookup_elem(&geometry, &zero);
    if (!g || irq >= g->slots)
        return;
    u32 slots = g->slots, cpus = g->cpus;
    for (u32 cpu = 0; cpu < arm_cpus && cpu < IRQSCOPE_ARM_CPUS_MAX && cpu < cpus; cpu++) {
        u32 key = cpu * slots + irq;
        struct irqscope_irq_count *c = bpf_map_lookup_elem(&irq_counts, &key);
        if (c)
            c->first_armed = 1;
    }
}

/* free_irq's return: the irq's handled interrupts so far, summed over CPUs, for the free event
 * (IRQSCOPE_FREE_IRQ_COUNTED set), or 0 when the irq is untracked. No handler of it runs any
 * more: the sum is final for the device that held it. */
static __always_inline u64 counted_so_far(u32 irq)
{
    u32 zero = 0;
    struct irqscope_geometry *g = bpf_map_lookup_elem(&geometry, &zero);
    if (!g || irq >= g->slots)
        return 0;
    u32 slots = g->slots, cpus = g->cpus;
    u64 sum = 0;
    for (u32 cpu = 0; cpu < arm_cpus && cpu < IRQSCOPE_ARM_CPUS_MAX && cpu < cpus; cpu++) {
        u32 key = cpu * slots + irq;
        struct irqscope_irq_count *c = bpf_map_lookup_elem(&irq_counts, &key);
        if (c)
            sum += c->interrupts;
    }
    return IRQSCOPE_FREE_IRQ_COUNTED | sum;
}

/* Everything but the common case: an action that is not the chain's last (a shared line), or
 * a last action that returned IRQ_NONE. Out of line, so that the common case stays a few
 * instructions: the cost per interrupt grows with the code run (docs/architecture.md).
 * A CPU runs one irq's chain at a time. The chain's earlier actions leave the OR of their
 * return values in chain_handled, valid while chain_seq still equals interrupts: the chain's
 * end always increments interrupts, so no path has to clear it. */
static __noinline int count_chain(u32 irq, struct irqscope_irq_count *c, int last, int ret)
{
    int same_chain = c->chain_seq == c->interrupts;
    if (!last) {
        if (same_chain)
            c->chain_handled |= ret;
        else {
            c->chain_seq = c->interrupts;
            c->chain_handled = ret;
        }
        return 0;
    }
    c->interrupts++;
    if (!(same_chain && c->chain_handled)) {
        c->unhandled++;
        report_unhandled(irq, c);
    } else if (c->first_armed) {
        report_first(irq, c);
    }
    return 0;
}

/* irq_handler_exit runs once per action. An interrupt is complete after the last action
 * of the chain (next == NULL); it was unhandled when every action returned IRQ_NONE,
 * which is what the kernel's note_interrupt() counts. */
static __always_inline int count_interrupt(u32 irq, struct irqaction *next, int ret, u32 slots)
{
    struct irqscope_irq_count *c = NULL;
    if (irq < slots) {
        u32 key = bpf_get_smp_processor_id() * slots + irq;
        c = bpf_map_lookup_elem(&irq_counts, &key);
    }
    if (!c) {
        if (!next)
            counter_inc(IRQSCOPE_CTR_IRQ_UNTRACKED);
        return 0;
    }
    if (next || !ret)
        return count_chain(irq, c, !next, ret);
    c->interrupts++;
    if (c->first_armed)
        report_first(irq, c);
    return 0;
}

/* A line's actions all have IRQF_SHARED or it has one action (__setup_irq refuses the mix), so
 * only a shared action can have a next. tp_btf reads flags directly, in the cache line that
 * holds next (struct irqaction is cache-line aligned): one load and no helper call for MSI and
 * MSI-X irqs, never shared. next itself is probe-read: a pointer loaded from a trusted argument
 * makes the verifier search kernel BTF four times for "irqaction__safe_*" types (3.5 ms of each
 * start on 6.18, in vmlinux's 150,000 types); a scalar does not. */
#define IRQF_SHARED_FLAG 0x00000080
#define IRQ_DELIVERY(slots)                                                                 \
    SEC("tp_btf/irq_handler_exit")                                                          \
    int BPF_PROG(tp_btf__irq_handler_exit__##slots, int irq, struct irqaction *action,      \
                 int ret)                                                                   \
    {                                                                                       \
        struct irqaction *next = NULL;                                                      \
        if (action->flags & IRQF_SHARED_FLAG)                                               \
            next = BPF_CORE_READ(action, next);                                             \
        return count_interrupt(irq, next, ret, slots);                                      \
    }                                                                                       \
    SEC("raw_tp/irq_handler_exit")                                                          \
    int raw_tp__irq_handler_exit__##slots(u64 *ctx)                                         \
    {                                                                                       \
        struct irqaction *action = (struct irqaction *)ctx[1];                              \
        return count_interrupt((u32)ctx[0], BPF_CORE_READ(action, next), (int)ctx[2], slots); \
    }

IRQ_DELIVERY(32)
IRQ_DELIVERY(64)
IRQ_DELIVERY(128)
IRQ_DELIVERY(256)
IRQ_DELIVERY(512)
IRQ_DELIVERY(1024)
IRQ_DELIVERY(2048)
IRQ_DELIVERY(4096)
IRQ_DELIVERY(8192)
IRQ_DELIVERY(16384)
IRQ_DELIVERY(32768)
_Static_assert(IRQSCOPE_IRQ_SLOTS_MIN == 32 && IRQSCOPE_IRQ_SLOTS_MAX == 32768,
               "one IRQ_DELIVERY per power of two between the two");

/* An interrupt on a vector with no handler: 0xef is the "shutdown" vector MSI entries are
 * parked on between allocation and request_irq. */
static __always_inline int on_spurious(u64 *ctx)
{
    u32 vector = (u32)ctx[0] & 0xff;
    u64 *c = bpf_map_lookup_elem(&spurious_counts, &vector);
    if (c)
        __sync_fetch_and_add(c, 1);
    return 0;
}
TRACEPOINT(spurious_apic_entry, on_spurious)
