import ArgumentParser

/// `make bench` runs both: what irqscope costs per interrupt in the kernel, and what serving
/// costs against node_exporter.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irqscope-bench",
        abstract: "irqscope's benchmarks: per-interrupt BPF cost (bpf) and serving against node_exporter (serve).",
        subcommands: [BPFCost.self, ServeBench.self],
        defaultSubcommand: BPFCost.self)
}
