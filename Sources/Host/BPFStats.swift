/// Whether the kernel counts BPF programs' runs and run time (sysctl kernel.bpf_stats_enabled):
/// off by default, since timing every run costs some tens of nanoseconds.
public func bpfStatsEnabled(root: String = "/") -> Bool {
    readFile((root.hasSuffix("/") ? root : root + "/") + "proc/sys/kernel/bpf_stats_enabled")?.first == "1"
}
