import CSys
import IrqscopeHost

extension Capabilities {
    /// What serving needs once attached: nothing, except CAP_BPF on kernels that refuse every
    /// bpf() call to a thread without it (before 6.5, with unprivileged BPF disabled). Decided by
    /// trying a map read from a thread that has dropped everything.
    public static func needed(for session: KernelSession) -> UInt64 {
        irqscope_unprivileged_map_read(session.maps.counters, 8) == 0 ? 0 : bit("bpf")
    }
}
