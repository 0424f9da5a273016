/* The kernel-to-user ABI of irqscope: every record the BPF programs write and
 * every map layout Swift reads. Compiled into the BPF object (BPF/irqscope.bpf.c)
 * and imported by Swift as the module IrqscopeABI. Nothing here is written twice.
 *
 * Bump IRQSCOPE_ABI_VERSION whenever the event layout changes: recordings carry it, and
 * replay refuses a recording of another version rather than misreading it. */
#ifndef IRQSCOPE_ABI_H
#define IRQSCOPE_ABI_H

#ifdef __bpf__
/* The BPF side gets the fixed-width types from BPF/include/vmlinux_min.h. */
#else
#include <linux/types.h>
#endif

#define IRQSCOPE_ABI_VERSION 1

#define IRQSCOPE_COMM_LEN 16
#define IRQSCOPE_DEVICE_LEN 16 /* "0000:00:03.0" and a NUL; longer names are cut */
#define IRQSCOPE_IRQ_NAME_LEN 48 /* "vfio-msix[2047](0000:00:03.0)" fits */

/* Lifecycle events: rare (per vector set-up, not per interrupt), one ring buffer. */
enum irqscope_event_type {
    IRQSCOPE_EV_MSIX_ENABLE = 1,  /* bulk MSI-X enable returned */
    IRQSCOPE_EV_MSIX_ADD = 2,     /* one vector added to a live MSI-X table (dynamic MSI-X) */
    IRQSCOPE_EV_MSIX_DISABLE = 3, /* MSI-X is being switched off on a device */
    IRQSCOPE_EV_MSI_ALLOC = 4,    /* MSI domain allocated interrupt descriptors */
    IRQSCOPE_EV_MSI_FREE = 5,
    IRQSCOPE_EV_IRTE_ALLOC = 6,   /* interrupt-remapping entries allocated */
    IRQSCOPE_EV_IRTE_FREE = 7,
    IRQSCOPE_EV_IRTE_ACTIVATE = 8,
    IRQSCOPE_EV_IRTE_DEACTIVATE = 9,
    IRQSCOPE_EV_IRTE_POSTED = 10, /* set_vcpu_affinity: IRTE to posted (or back to remapped) mode */
    IRQSCOPE_EV_PI_UPDATE = 11,   /* kvm:kvm_pi_irte_update */
    IRQSCOPE_EV_REQUEST_IRQ = 12,
    IRQSCOPE_EV_FREE_IRQ = 13,
    IRQSCOPE_EV_VFIO_SET_IRQS = 14,
    IRQSCOPE_EV_VECTOR_RESERVE = 15,
    IRQSCOPE_EV_VECTOR_ALLOC = 16,
    IRQSCOPE_EV_VECTOR_ACTIVATE = 17,
    IRQSCOPE_EV_VECTOR_DEACTIVATE = 18,
    IRQSCOPE_EV_VECTOR_TEARDOWN = 19,
    IRQSCOPE_EV_VECTOR_CONFIG = 20,
    IRQSCOPE_EV_MATRIX = 21,      /* any irq_matrix:* tracepoint; payload says which */
    IRQSCOPE_EV_IRQ_ALLOC = 22,   /* MSI domain gave a device irq numbers (one descriptor) */
    IRQSCOPE_EV_IRQ_FREE = 23,
    IRQSCOPE_EV_UNHANDLED = 24,   /* interrupts every action returned IRQ_NONE for, since the last report */
    IRQSCOPE_EV_FIRST_IRQ = 25,   /* the first handled interrupt since the irq's vector was activated */
    IRQSCOPE_EV_TYPE_MAX = 26,
};

/* Which irq_matrix tracepoint a matrix event came from. */
enum irqscope_matrix_op {
    IRQSCOPE_MATRIX_ONLINE = 1,
    IRQSCOPE_MATRIX_OFFLINE = 2,
    IRQSCOPE_MATRIX_RESERVE = 3,
    IRQSCOPE_MATRIX_REMOVE_RESERVED = 4,
    IRQSCOPE_MATRIX_ASSIGN_SYSTEM = 5,
    IRQSCOPE_MATRIX_ALLOC = 6,
    IRQSCOPE_MATRIX_FREE = 7,
    IRQSCOPE_MATRIX_ASSIGN = 8,
    IRQSCOPE_MATRIX_ALLOC_MANAGED = 9,
    IRQSCOPE_MATRIX_RESERVE_MANAGED = 10,
    IRQSCOPE_MATRIX_REMOVE_MANAGED = 11,
};

/* Which kernel function (or tracepoint) produced an event: families have per-kernel
 * variants, and the trace output names the one that fired. */
enum irqscope_source {
    IRQSCOPE_SRC_TRACEPOINT = 0,
    IRQSCOPE_SRC_PCI_ALLOC_IRQ_VECTORS = 1,
    IRQSCOPE_SRC_PCI_ENABLE_MSIX_RANGE_INTERNAL = 2, /* __pci_enable_msix_range */
    IRQSCOPE_SRC_PCI_ENABLE_MSIX_RANGE = 3,
    IRQSCOPE_SRC_PCI_MSIX_ALLOC_IRQ_AT = 4,
    IRQSCOPE_SRC_PCI_MSIX_SHUTDOWN = 5,
    IRQSCOPE_SRC_PCI_DISABLE_MSIX = 6,
    IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_INTERNAL = 7, /* __msi_domain_alloc_irqs */
    IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_DESCS_LOCKED = 8,
    IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_ALL_LOCKED = 9,
    IRQSCOPE_SRC_MSI_DOMAIN_ALLOC_RANGE_LOCKED = 10,
    IRQSCOPE_SRC_MSI_DOMAIN_FREE_INTERNAL = 11, /* __msi_domain_free_irqs */
    IRQSCOPE_SRC_MSI_DOMAIN_FREE_DESCS_LOCKED = 12,
    IRQSCOPE_SRC_MSI_DOMAIN_FREE_ALL_LOCKED = 13,
    IRQSCOPE_SRC_MSI_DOMAIN_FREE_RANGE_LOCKED = 14,
    IRQSCOPE_SRC_INTEL_IR = 15,
    IRQSCOPE_SRC_AMD_IR = 16,
    IRQSCOPE_SRC_REQUEST_THREADED_IRQ = 17,
    IRQSCOPE_SRC_FREE_IRQ = 18,
    IRQSCOPE_SRC_VFIO_PCI_SET_IRQS_IOCTL = 19,
    IRQSCOPE_SRC_PCI_FREE_IRQ_VECTORS = 20,
    IRQSCOPE_SRC_MSI_DOMAIN_OPS = 21, /* msi_domain_alloc / msi_domain_free */
};

struct irqscope_msix_range { /* MSIX_ENABLE */
    __s32 min_vecs;
    __s32 max_vecs;
    __u32 flags;       /* PCI_IRQ_* flags where the function takes them */
    __u32 reserved;
};

struct irqscope_msix_add { /* MSIX_ADD: result is the virq or -errno */
    __u32 index_requested; /* MSI_ANY_INDEX = UINT_MAX */
    __s32 index_allocated; /* -1 on failure */
};

struct irqscope_msi_domain { /* MSI_ALLOC, MSI_FREE */
    __u32 first;       /* MSI index range the call covers; UINT_MAX when the kernel does not say */
    __u32 last;
    __u32 count;       /* ALLOC: descriptors requested; FREE: irqs released, from event.irq up */
    __u32 domid;
};

struct irqscope_irte { /* IRTE_ALLOC/FREE/ACTIVATE/DEACTIVATE/POSTED */
    __u32 nr_irqs;     /* ALLOC/FREE: consecutive irqs starting at event.irq */
    __u32 reserve;     /* ACTIVATE: 1 = reservation-mode activation (no CPU vector yet) */
    __u32 posted;      /* POSTED: 1 = posted to a vCPU, 0 = back to remapped */
    __u32 hwirq_index; /* ALLOC: MSI index from the allocation info, UINT_MAX if unknown */
};

struct irqscope_irq_range { /* IRQ_ALLOC, IRQ_FREE: irqs event.irq .. event.irq + nr_irqs - 1 */
    __u32 nr_irqs;
    __u32 msi_index;   /* ALLOC: the descriptor's MSI index, UINT_MAX if unknown */
};

struct irqscope_unhandled { /* UNHANDLED: reported at most every IRQSCOPE_UNHANDLED_REPORT_NS per irq and CPU */
    __u64 count;
};

#define IRQSCOPE_UNHANDLED_REPORT_NS 100000ULL

struct irqscope_pi_update { /* PI_UPDATE */
    __u32 vcpu_id;
    __u32 gsi;
    __u32 gvec;
    __u32 set;
};

struct irqscope_irq_request { /* REQUEST_IRQ, FREE_IRQ */
    /* REQUEST_IRQ: its irqflags. FREE_IRQ: IRQSCOPE_FREE_IRQ_COUNTED | the irq's handled
     * interrupts since attach, summed over CPUs, as free_irq returns: an irq freed between two
     * scrapes is gone at the second, and its last interrupts with it (0 in recordings made
     * before, and for an untracked irq) */
    __u64 flags;
    char name[IRQSCOPE_IRQ_NAME_LEN];
};
#define IRQSCOPE_FREE_IRQ_COUNTED (1ULL << 63)

struct irqscope_vfio_set_irqs { /* VFIO_SET_IRQS */
    __u32 flags;       /* VFIO_IRQ_SET_* */
    __u32 index;       /* VFIO_PCI_*_IRQ_INDEX */
    __u32 start;
    __u32 count;
};

struct irqscope_vector { /* VECTOR_* tracepoints */
    __u32 vector;
    __u32 cpu;
    __u32 apicdest;
    __u8 is_managed;
    __u8 can_reserve;
    __u8 reserve;
    __u8 reserved;     /* VECTOR_ALLOC: vector came from the reservation */
    __u8 has_reserved; /* VECTOR_TEARDOWN */
    __u8 pad[3];
};

struct irqscope_matrix { /* MATRIX */
    __u32 op;          /* enum irqscope_matrix_op */
    __s32 bit;         /* vector, -1 for global-only tracepoints */
    __u32 cpu;         /* UINT_MAX for global-only tracepoints */
    __u32 online;
    __u32 available;   /* per CPU */
    __u32 allocated;
    __u32 managed;
    __u32 online_maps; /* global */
    __u32 global_available;
    __u32 global_reserved;
    __u32 total_allocated;
    __u32 has_cpu;     /* 1 when the per-CPU fields are valid */
};

struct irqscope_event {
    __u64 time_ns;     /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
    __u64 reserved;    /* was cgroup_id, never read: zero since, a cgroup id in older recordings */
    __s64 result;      /* kernel return value, 0 where the hook has none */
    __u32 type;        /* enum irqscope_event_type */
    __u32 source;      /* enum irqscope_source */
    __u32 tgid;
    __u32 pid;
    __u32 cpu;
    __s32 irq;         /* Linux irq number, -1 when the event has none */
    char comm[IRQSCOPE_COMM_LEN];
    char device[IRQSCOPE_DEVICE_LEN];
    union {
        struct irqscope_msix_range msix_range;
        struct irqscope_msix_add msix_add;
        struct irqscope_msi_domain msi_domain;
        struct irqscope_irte irte;
        struct irqscope_irq_range irq_range;
        struct irqscope_unhandled unhandled;
        struct irqscope_pi_update pi_update;
        struct irqscope_irq_request irq_request;
        struct irqscope_vfio_set_irqs vfio;
        struct irqscope_vector vector;
        struct irqscope_matrix matrix;
    } u;
};

/* Sizes of a CPU's slice of the per-interrupt counts: powers of two, BPF/delivery.h has a
 * program for each. Sized from the host's irqs, never below DEFAULT_MIN; the smaller ones exist
 * for a cap (--bpf.max-irq-slots) on hosts with many possible CPUs. */
#define IRQSCOPE_IRQ_SLOTS_MIN 32
#define IRQSCOPE_IRQ_SLOTS_DEFAULT_MIN 1024
#define IRQSCOPE_IRQ_SLOTS_MAX 32768

/* Per-interrupt counts: one per CPU and irq number ([cpu][irq] slices of one array), summed
 * over CPUs in user space. */
struct irqscope_irq_count {
    __u64 interrupts; /* handle_irq_event runs: one per interrupt, however many actions */
    /* Next to interrupts, so that the common case reads one line (a slot straddles two when
     * these 16 bytes do: never at this size). Set for every CPU when the irq's vector is
     * activated; the CPU's next handled interrupt clears it and reports FIRST_IRQ. */
    __u32 first_armed;
    __u32 chain_handled; /* scratch: OR of the current chain's earlier actions' return values */
    __u64 unhandled;  /* of those, every action returned IRQ_NONE */
    __u64 chain_seq;     /* scratch: `interrupts` when the current chain's earlier actions ran */
    __u64 unhandled_reported; /* unhandled count at the last UNHANDLED event */
    __u64 next_report_ns;     /* no UNHANDLED event before this time: storms are batched */
};

/* The counts array's shape, for the program that writes every CPU's slot of an irq. */
struct irqscope_geometry {
    __u32 slots;
    __u32 cpus;
};

/* arm_first's loop bound: CPUs beyond it never report a first interrupt (their counts are whole). */
#define IRQSCOPE_ARM_CPUS_MAX 1024

/* Slots of the per-CPU "counters" array. */
enum irqscope_counter {
    IRQSCOPE_CTR_EVENTS_DROPPED = 0, /* ring buffer full: event lost, counted here */
    IRQSCOPE_CTR_IRQ_UNTRACKED = 1,  /* interrupt on an irq number beyond the counts array */
    IRQSCOPE_CTR_ARGS_MISSED = 2,    /* kretprobe without its kprobe half (stash full or attached mid-call) */
    IRQSCOPE_CTR_MAX = 3,
};

#define IRQSCOPE_SPURIOUS_VECTORS 256

#endif
