#ifndef IRQSCOPE_VMLINUX_BTF_H
#define IRQSCOPE_VMLINUX_BTF_H
/* libbpf's vmlinux BTF loader, mapped where the kernel allows (static builds, see
 * vmlinux_btf.c). Starts mapping and parsing it on a thread of its own; the next load that
 * needs it takes the result. Returns 1 when started, 0 where libbpf's loader is not routed
 * here (a dynamically linked libbpf). */
int irqscope_prefetch_vmlinux_btf(void);
#endif
