import CLibbpf
import Glibc
import IrqscopeDecode

/// The empty program on irq_handler_exit that `irqscope-bench` measures irqscope against.
public final class BaselineProgram: @unchecked Sendable {
    private let object: BPFObject

    public init() throws(KernelError) {
        object = try BPFObject(image: base64Decode(EmbeddedBPF.benchEmpty), name: "irqscope_bench")
        let (code, refused) = object.load()
        guard code == 0 else { throw .errno("cannot load the baseline program\(refused.values.first.map { " (\($0))" } ?? "")", code) }
        if case .failure(let error) = object.attach(program: "bench_empty") { throw error }
    }

    public func stats() -> ProgramCost? { object.programStats().first }

    public func close() { object.close() }
}

/// Keeps the kernel's per-program run-time statistics on while alive (BPF_ENABLE_STATS:
/// switched off again when the fd closes, even if the process dies).
public final class RunTimeStats: @unchecked Sendable {
    private let fd: Int32

    public init() throws(KernelError) {
        fd = bpf_enable_stats(BPF_STATS_RUN_TIME)
        guard fd >= 0 else { throw .errno("cannot enable BPF run-time statistics") }
    }

    deinit { Glibc.close(fd) }
}
