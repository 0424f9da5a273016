/* Minimal kernel types for irqscope's CO-RE programs, written by hand so the build
 * does not depend on the build host's kernel. Every struct is relocated against the
 * running kernel's BTF (preserve_access_index): only the fields named here are used,
 * and their offsets come from the target kernel, not from this file. */
#ifndef IRQSCOPE_VMLINUX_MIN_H
#define IRQSCOPE_VMLINUX_MIN_H

/* Tells bpf_tracing.h to use the kernel's pt_regs field names (di, si, ...). */
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

enum bpf_map_type {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
    BPF_MAP_TYPE_PERCPU_HASH = 5,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_LRU_HASH = 9,
    BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
    BPF_ANY = 0,
    BPF_NOEXIST = 1,
    BPF_EXIST = 2,
};

enum {
    BPF_F_MMAPABLE = (1U << 10),
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
    unsigned long r9;
    unsigned long r8;
    unsigned long ax;
    unsigned long cx;
    unsigned long dx;
    unsigned long si;
    unsigned long di;
    unsigned long ip;
    unsigned long sp;
};

struct kobject {
    const char *name;
};

struct device {
    struct kobject kobj;
};

struct pci_dev {
    struct device dev;
    unsigned int msix_enabled : 1;
};

struct irqaction {
    struct irqaction *next;
    unsigned int flags;
};

struct msi_desc {
    struct device *dev;
    __u16 msi_index;
};

struct irq_common_data {
    struct msi_desc *msi_desc;
};

struct irq_data {
    unsigned int irq;
    struct irq_common_data *common;
};

/* x86: the allocation info handed down the irq domain hierarchy. */
struct irq_alloc_info {
    struct msi_desc *desc;
};

/* 6.2+: the argument of the per-device MSI domain allocation functions. */
struct msi_ctrl {
    unsigned int domid;
    unsigned int first;
    unsigned int last;
    unsigned int nirqs;
};

/* AMD posted-interrupt info passed to amd_ir_set_vcpu_affinity. */
struct amd_iommu_pi_data {
    bool is_guest_mode;
};

struct vfio_pci_core_device {
    struct pci_dev *pdev;
};

/* kernel/irq/matrix.c: private, but in BTF because the irq_matrix tracepoints use them. */
struct cpumap {
    unsigned int available;
    unsigned int allocated;
    unsigned int managed;
    bool online;
};

struct irq_matrix {
    unsigned int online_maps;
    unsigned int global_available;
    unsigned int global_reserved;
    unsigned int total_allocated;
};

/* kvm:kvm_pi_irte_update record; pi_desc_addr is gone in 7.x, whose tracepoint
 * arguments differ accordingly. */
struct trace_event_raw_kvm_pi_irte_update {
    __u64 pi_desc_addr;
};

#pragma clang attribute pop

#endif
