/* x86 vector domain (irq_vectors:vector_*) and the CPU vector matrix (irq_matrix:*). */

static __always_inline int vector_event(u32 type, u32 irq, s64 result, struct irqscope_event **out)
{
    struct irqscope_event *e = event_reserve(type, IRQSCOPE_SRC_TRACEPOINT);
    if (!e)
        return 0;
    e->irq = irq;
    e->result = result;
    *out = e;
    return 1;
}

/* (irq, ret): the managed variant shares the event, flagged is_managed. */
static __always_inline int on_reserve(u64 *ctx, u8 managed)
{
    struct irqscope_event *e;
    if (!vector_event(IRQSCOPE_EV_VECTOR_RESERVE, (u32)ctx[0], (s32)ctx[1], &e))
        return 0;
    e->u.vector.is_managed = managed;
    event_submit(e);
    return 0;
}
static __always_inline int on_vector_reserve(u64 *ctx) { return on_reserve(ctx, 0); }
static __always_inline int on_vector_reserve_managed(u64 *ctx) { return on_reserve(ctx, 1); }
TRACEPOINT(vector_reserve, on_vector_reserve)
TRACEPOINT(vector_reserve_managed, on_vector_reserve_managed)

/* vector_alloc(irq, vector, reserved, ret) */
static __always_inline int on_vector_alloc(u64 *ctx)
{
    struct irqscope_event *e;
    if (!vector_event(IRQSCOPE_EV_VECTOR_ALLOC, (u32)ctx[0], (s32)ctx[3], &e))
        return 0;
    e->u.vector.vector = (u32)ctx[1];
    e->u.vector.reserved = (u8)ctx[2];
    event_submit(e);
    return 0;
}
TRACEPOINT(vector_alloc, on_vector_alloc)

/* vector_alloc_managed(irq, vector, ret) */
static __always_inline int on_vector_alloc_managed(u64 *ctx)
{
    struct irqscope_event *e;
    if (!vector_event(IRQSCOPE_EV_VECTOR_ALLOC, (u32)ctx[0], (s32)ctx[2], &e))
        return 0;
    e->u.vector.vector = (u32)ctx[1];
    e->u.vector.is_managed = 1;
    event_submit(e);
    return 0;
}
TRACEPOINT(vector_alloc_managed, on_vector_alloc_managed)

/* vector_activate / vector_deactivate(irq, is_managed, can_reserve, reserve) */
static __always_inline int on_activation(u64 *ctx, u32 type)
{
    struct irqscope_event *e;
    if (!vector_event(type, (u32)ctx[0], 0, &e))
        return 0;
    e->u.vector.is_managed = (u8)ctx[1];
    e->u.vector.can_reserve = (u8)ctx[2];
    e->u.vector.reserve = (u8)ctx[3];
    event_submit(e);
    return 0;
}
static __always_inline int on_vector_activate(u64 *ctx)
{
    arm_first((u32)ctx[0]);
    return on_activation(ctx, IRQSCOPE_EV_VECTOR_ACTIVATE);
}
static __always_inline int on_vector_deactivate(u64 *ctx) { return on_activation(ctx, IRQSCOPE_EV_VECTOR_DEACTIVATE); }
TRACEPOINT(vector_activate, on_vector_activate)
TRACEPOINT(vector_deactivate, on_vector_deactivate)

/* vector_teardown(irq, is_managed, has_reserved) */
static __always_inline int on_vector_teardown(u64 *ctx)
{
    struct irqscope_event *e;
    if (!vector_event(IRQSCOPE_EV_VECTOR_TEARDOWN, (u32)ctx[0], 0, &e))
        return 0;
    e->u.vector.is_managed = (u8)ctx[1];
    e->u.vector.has_reserved = (u8)ctx[2];
    event_submit(e);
    return 0;
}
TRACEPOINT(vector_teardown, on_vector_teardown)

/* vector_config(irq, vector, cpu, apicdest) */
static __always_inline int on_vector_config(u64 *ctx)
{
    struct irqscope_event *e;
    if (!vector_event(IRQSCOPE_EV_VECTOR_CONFIG, (u32)ctx[0], 0, &e))
        return 0;
    e->u.vector.vector = (u32)ctx[1];
    e->u.vector.cpu = (u32)ctx[2];
    e->u.vector.apicdest = (u32)ctx[3];
    event_submit(e);
    return 0;
}
TRACEPOINT(vector_config, on_vector_config)

/* Every matrix event carries the absolute state it leaves behind, so one event is enough to
 * resynchronise after drops. */
static __always_inline int matrix_event(u32 op, s32 bit, u32 cpu, struct irq_matrix *m, struct cpumap *cm)
{
    struct irqscope_event *e = event_reserve(IRQSCOPE_EV_MATRIX, IRQSCOPE_SRC_TRACEPOINT);
    if (!e)
        return 0;
    e->u.matrix.op = op;
    e->u.matrix.bit = bit;
    e->u.matrix.cpu = cpu;
    e->u.matrix.online_maps = BPF_CORE_READ(m, online_maps);
    e->u.matrix.global_available = BPF_CORE_READ(m, global_available);
    e->u.matrix.global_reserved = BPF_CORE_READ(m, global_reserved);
    e->u.matrix.total_allocated = BPF_CORE_READ(m, total_allocated);
    if (cm) {
        e->u.matrix.has_cpu = 1;
        e->u.matrix.available = BPF_CORE_READ(cm, available);
        e->u.matrix.allocated = BPF_CORE_READ(cm, allocated);
        e->u.matrix.managed = BPF_CORE_READ(cm, managed);
        e->u.matrix.online = BPF_CORE_READ(cm, online);
    }
    event_submit(e);
    return 0;
}

/* (matrix) */
#define MATRIX_GLOBAL(tp, op)                                                    \
    static __always_inline int on_##tp(u64 *ctx)                                 \
    {                                                                            \
        return matrix_event(op, -1, UINT_MAX_U32, (struct irq_matrix *)ctx[0], NULL); \
    }                                                                            \
    TRACEPOINT(tp, on_##tp)

/* (bit, cpu, matrix, cpumap) */
#define MATRIX_CPU(tp, op)                                                       \
    static __always_inline int on_##tp(u64 *ctx)                                 \
    {                                                                            \
        return matrix_event(op, (s32)ctx[0], (u32)ctx[1], (struct irq_matrix *)ctx[2], \
                            (struct cpumap *)ctx[3]);                            \
    }                                                                            \
    TRACEPOINT(tp, on_##tp)

MATRIX_GLOBAL(irq_matrix_online, IRQSCOPE_MATRIX_ONLINE)
MATRIX_GLOBAL(irq_matrix_offline, IRQSCOPE_MATRIX_OFFLINE)
MATRIX_GLOBAL(irq_matrix_reserve, IRQSCOPE_MATRIX_RESERVE)
MATRIX_GLOBAL(irq_matrix_remove_reserved, IRQSCOPE_MATRIX_REMOVE_RESERVED)
MATRIX_CPU(irq_matrix_alloc, IRQSCOPE_MATRIX_ALLOC)
MATRIX_CPU(irq_matrix_free, IRQSCOPE_MATRIX_FREE)
MATRIX_CPU(irq_matrix_assign, IRQSCOPE_MATRIX_ASSIGN)
MATRIX_CPU(irq_matrix_alloc_managed, IRQSCOPE_MATRIX_ALLOC_MANAGED)
MATRIX_CPU(irq_matrix_reserve_managed, IRQSCOPE_MATRIX_RESERVE_MANAGED)
MATRIX_CPU(irq_matrix_remove_managed, IRQSCOPE_MATRIX_REMOVE_MANAGED)

/* (bit, matrix) */
static __always_inline int on_irq_matrix_assign_system(u64 *ctx)
{
    return matrix_event(IRQSCOPE_MATRIX_ASSIGN_SYSTEM, (s32)ctx[0], UINT_MAX_U32,
                        (struct irq_matrix *)ctx[1], NULL);
}
TRACEPOINT(irq_matrix_assign_system, on_irq_matrix_assign_system)
