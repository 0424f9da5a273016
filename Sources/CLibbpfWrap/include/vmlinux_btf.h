#ifndef IRQSCOPE_VMLINUX_BTF_H
#define IRQSCOPE_VMLINUX_BTF_H
/* libbpf's vmlinux BTF loader, mapped where the kernel allows (static builds, see
 * vmlinux_btf.c). Starts mapping and parsing it on a thread of its own; the next load that
 * needs it takes the result. Does nothing where libbpf's loader is not routed here (a
 * dynamically linked libbpf). */
void irqscope_prefetch_vmlinux_btf(void);
#endif
