import CLibbpf
import Glibc
import Synchronization

/// libbpf reports through a process-wide print callback that cannot capture context. Its
/// lines are kept for `--log.level=debug`, and for the failures that come before the verifier
/// (a refused program type, a missing BTF target), which leave a program's log buffer empty.
enum LibbpfLog {
    private static let lines = Mutex<[String]>([])
    private static let verbose = Atomic<Bool>(false)

    static func install(verbose: Bool) {
        Self.verbose.store(verbose, ordering: .relaxed)
        _ = libbpf_set_print { level, format, args in
            guard let format, let args else { return 0 }
            // libbpf prints hundreds of debug lines per load (one per CO-RE relocation): formatting
            // each into a 64 KiB buffer only to drop it was 2% of start-up
            if level == LIBBPF_DEBUG && !LibbpfLog.verbose.load(ordering: .relaxed) { return 0 }
            var buffer = [CChar](repeating: 0, count: 65536)
            let n = vsnprintf(&buffer, buffer.count, format, args)
            guard n > 0 else { return 0 }
            let line = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            LibbpfLog.record(line, debug: level == LIBBPF_DEBUG)
            return n
        }
    }

    private static func record(_ line: String, debug: Bool) {
        let verbose = Self.verbose.load(ordering: .relaxed)
        if debug && !verbose { return }
        lines.withLock { $0.append(line) }
        if verbose {
            let text = "libbpf: " + line
            _ = text.withCString { write(2, $0, strlen($0)) }
        }
    }

    /// A program's own verifier log, which libbpf does not print once the program has a buffer:
    /// shown where `--log.level=debug` would have shown it.
    static func debug(program: String, log: String) {
        guard verbose.load(ordering: .relaxed) else { return }
        let text = "libbpf: prog '\(program)': -- BEGIN PROG LOAD LOG --\n\(log)-- END PROG LOAD LOG --\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    /// Lines logged since the last call.
    static func drain() -> [String] {
        lines.withLock { l in
            defer { l.removeAll() }
            return l
        }
    }

    /// Programs libbpf names as failing, for a load that left every program's log buffer empty.
    static func refusedPrograms(in log: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for message in log {
            guard let start = message.firstRange(of: "prog '"),
                  let end = message[start.upperBound...].firstIndex(of: "'") else { continue }
            let name = String(message[start.upperBound..<end])
            let rest = message[message.index(after: end)...].trimmingCharacters(in: ": \n")
            if rest.hasPrefix("BPF program load failed:") {
                out[name] = "load failed:" + rest.dropFirst("BPF program load failed:".count).trimmingCharacters(in: "\n")
            } else if rest.hasPrefix("failed to load") || rest.contains("failed to find kernel BTF")
                        || rest.contains("failed to resolve") {
                out[name] = out[name] ?? rest
            }
        }
        return out
    }
}
