/* The baseline for `make bench`: an empty program on the tracepoint irqscope counts on. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(bench_empty, int irq, struct irqaction *action, int ret)
{
    return 0;
}
