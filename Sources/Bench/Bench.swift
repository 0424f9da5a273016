import ArgumentParser

/// `make bench` runs both: what irqscope costs per interrupt in the kernel, and what serving
/// costs against node_exporter.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irqscope-bench",
        abstract: "irqscope's benchmarks: per-interrupt BPF cost (bpf), serving against node_exporter (serve), scrape times of running exporters (scrapes), the counts read of a scrape at many CPUs (counts).",
        subcommands: [BPFCost.self, ServeBench.self, ScrapeTimes.self, CountsRead.self, ModelScrape.self],
        defaultSubcommand: BPFCost.self)
}
