import ArgumentParser

/// `make bench` runs both: what irqscope costs per interrupt in the kernel, and what serving
/// costs against node_exporter.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irqscope-bench",
        abstract: "irqscope's benchmarks: per-interrupt BPF cost (bpf), serving against node_exporter (serve), scrape times of running exporters (scrapes).",
        subcommands: [BPFCost.self, ServeBench.self, ScrapeTimes.self],
        defaultSubcommand: BPFCost.self)
}
