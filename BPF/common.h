/* Maps and helpers shared by every irqscope hook family. */
#ifndef IRQSCOPE_COMMON_H
#define IRQSCOPE_COMMON_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "irqscope_abi.h"
#include "compat.h"

#define UINT_MAX_U32 0xffffffffu

/* Lifecycle events. 4 MiB holds ~30k events: a NORESIZE guest enabling 64 vectors
 * produces ~20k in one burst. Overflow is counted, never silent. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, IRQSCOPE_CTR_MAX);
    __type(key, u32);
    __type(value, u64);
} counters SEC(".maps");

static __always_inline void counter_inc(u32 slot)
{
    u64 *v = bpf_map_lookup_elem(&counters, &slot);
    if (v)
        (*v)++;
}

static __always_inline struct irqscope_event *event_reserve(u32 type, u32 source)
{
    struct irqscope_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        counter_inc(IRQSCOPE_CTR_EVENTS_DROPPED);
        return NULL;
    }
    u64 id = bpf_get_current_pid_tgid();
    /* ring buffer memory is not zeroed: clear what a hook may leave unset */
    __builtin_memset(e, 0, sizeof(*e));
    e->time_ns = bpf_ktime_get_ns();
    e->type = type;
    e->source = source;
    e->tgid = id >> 32;
    e->pid = (u32)id;
    e->cpu = bpf_get_smp_processor_id();
    e->irq = -1;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    return e;
}

static __always_inline void event_submit(struct irqscope_event *e)
{
    bpf_ringbuf_submit(e, 0);
}

static __always_inline void set_device(struct irqscope_event *e, struct device *dev)
{
    const char *name = BPF_CORE_READ(dev, kobj.name);
    if (name)
        bpf_probe_read_kernel_str(e->device, sizeof(e->device), name);
}

static __always_inline void set_pci_device(struct irqscope_event *e, struct pci_dev *pdev)
{
    if (pdev)
        set_device(e, (struct device *)__builtin_preserve_access_index(&pdev->dev));
}

/* The PCI device behind an irq_data, through its MSI descriptor (NULL for non-MSI irqs). */
static __always_inline void set_irq_data_device(struct irqscope_event *e, struct irq_data *d)
{
    struct device *dev = BPF_CORE_READ(d, common, msi_desc, dev);
    if (dev)
        set_device(e, dev);
}

/* The device and MSI index behind an x86 irq allocation (UINT_MAX index when unknown). */
static __always_inline u32 set_alloc_info_device(struct irqscope_event *e, struct irq_alloc_info *info)
{
    struct msi_desc *desc = BPF_CORE_READ(info, desc);
    if (!desc)
        return UINT_MAX_U32;
    set_device(e, BPF_CORE_READ(desc, dev));
    return compat_msi_index(desc);
}

/* Argument n of a tracing context, loaded at a fixed offset. Where a CO-RE check picks
 * between argument slots, clang would otherwise merge both loads into ctx + (c ? a : b),
 * and the verifier rejects a modified ctx pointer. */
#define CTX_ARG(ctx, n) /* works on a ctx or a stack array alike */                                                          \
    ({                                                                           \
        u64 __v;                                                                 \
        asm volatile("%0 = *(u64 *)(%1 + %2)" : "=r"(__v) : "r"(ctx), "i"((n) * 8)); \
        __v;                                                                     \
    })

/* ---- One handler, two attach mechanisms ----
 * Function hooks are written once as `handler(const u64 *args, u64 ret)` and attached
 * as fentry/fexit where the kernel permits BPF trampolines, else as kprobe/kretprobe.
 * Integer arguments arrive as raw 64-bit register/slot values: handlers cast them. */

struct call_key {
    u64 pid_tgid;
    u32 source;
    u32 pad;
};

struct call_args {
    u64 a[6];
};

/* Arguments saved at kprobe entry for the matching kretprobe (LRU: a missed return cannot leak). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct call_key);
    __type(value, struct call_args);
} call_args SEC(".maps");

static __always_inline void regs_to_args(u64 *a, struct pt_regs *regs)
{
    a[0] = PT_REGS_PARM1(regs);
    a[1] = PT_REGS_PARM2(regs);
    a[2] = PT_REGS_PARM3(regs);
    a[3] = PT_REGS_PARM4(regs);
    a[4] = PT_REGS_PARM5(regs);
    a[5] = regs->r9; /* x86-64 sixth argument; libbpf 1.1 has no PT_REGS_PARM6 */
}

static __always_inline int stash_args(u32 source, struct pt_regs *regs)
{
    struct call_key k = {.pid_tgid = bpf_get_current_pid_tgid(), .source = source};
    struct call_args v;
    regs_to_args(v.a, regs);
    bpf_map_update_elem(&call_args, &k, &v, BPF_ANY);
    return 0;
}

static __always_inline bool take_args(u32 source, u64 *out)
{
    struct call_key k = {.pid_tgid = bpf_get_current_pid_tgid(), .source = source};
    struct call_args *v = bpf_map_lookup_elem(&call_args, &k);
    if (!v) {
        counter_inc(IRQSCOPE_CTR_ARGS_MISSED);
        return false;
    }
    __builtin_memcpy(out, v->a, sizeof(v->a));
    bpf_map_delete_elem(&call_args, &k);
    return true;
}

/* kprobe saves the arguments, kretprobe hands them and the return value to the handler. */
#define KPROBE_PAIR(fn, source, handler)                                         \
    SEC("kprobe/" #fn)                                                           \
    int kprobe__##fn(struct pt_regs *regs) { return stash_args(source, regs); }  \
    SEC("kretprobe/" #fn)                                                        \
    int kretprobe__##fn(struct pt_regs *regs)                                    \
    {                                                                            \
        u64 a[6];                                                                \
        if (!take_args(source, a))                                               \
            return 0;                                                            \
        return handler(a, PT_REGS_RC(regs));                                     \
    }

/* fn returns a value the handler needs: fexit, or kprobe + kretprobe. The return value is
 * read with bpf_get_func_ret (5.17, f92c1e183604 "bpf: Add get_func_[arg|ret|arg_cnt] helpers";
 * user space plans kretprobes where it is missing): 6.1's verifier refuses a ctx load of a
 * `void *` return slot. */
#define HOOK_RETURN(fn, source, handler)                                  \
    SEC("fexit/" #fn)                                                            \
    int fexit__##fn(u64 *ctx)                                                    \
    {                                                                            \
        u64 ret = 0;                                                             \
        bpf_get_func_ret(ctx, &ret);                                             \
        return handler(ctx, ret);                                                \
    }                                                                            \
    KPROBE_PAIR(fn, source, handler)

/* fn returns a struct by value: trampolines refuse it, so kprobe + kretprobe only. */
#define HOOK_RETURN_KPROBE_ONLY(fn, source, handler) KPROBE_PAIR(fn, source, handler)

/* Only the arguments matter: fentry, or kprobe. */
#define HOOK_ENTRY(fn, handler)                                                  \
    SEC("fentry/" #fn)                                                           \
    int fentry__##fn(u64 *ctx) { return handler(ctx, 0); }                       \
    SEC("kprobe/" #fn)                                                           \
    int kprobe__##fn(struct pt_regs *regs)                                       \
    {                                                                            \
        u64 a[6];                                                                \
        regs_to_args(a, regs);                                                   \
        return handler(a, 0);                                                    \
    }

/* Tracepoints: tp_btf where the kernel has BTF for it, else raw_tp. Both hand the
 * handler the raw u64 arguments; pointers are read with CO-RE probe reads. */
#define TRACEPOINT(tp, handler)                                                  \
    SEC("tp_btf/" #tp)                                                           \
    int tp_btf__##tp(u64 *ctx) { return handler(ctx); }                          \
    SEC("raw_tp/" #tp)                                                           \
    int raw_tp__##tp(u64 *ctx) { return handler(ctx); }

#endif
