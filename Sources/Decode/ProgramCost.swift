/// What one attached BPF program has cost, as the kernel counts it when BPF statistics are on
/// (`kernel.bpf_stats_enabled=1`).
public struct ProgramCost: Sendable, Equatable {
    public var program: String
    public var runs: UInt64
    public var runTimeNs: UInt64

    public init(program: String, runs: UInt64, runTimeNs: UInt64) {
        self.program = program
        self.runs = runs
        self.runTimeNs = runTimeNs
    }
}
