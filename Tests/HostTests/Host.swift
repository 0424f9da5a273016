import Foundation
import Testing
import TestSupport

/// All host tests attach irqscope to the running kernel, so they run one at a time (a test
/// counting our BPF programs must not see another test's). They need root and BPF; CI is both.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root with BPF: these tests attach irqscope to the running kernel"))
enum Host {}

enum HostEnv {
    /// The binary under test: IRQSCOPE_BIN, else the release build (what users run), else debug.
    static var binary: String { irqscopeBinary }


    /// `irqscope serve` on a free loopback port, returned once /healthz answers.
    static func serve(_ extra: [String] = []) throws -> (Running, Int) {
        let port = freePort()
        return (try start([binary, "serve", "--web.listen-address=127.0.0.1:\(port)"] + extra, port: port), port)
    }

    /// Runs `argv` (irqscope serve, perhaps behind setpriv or unshare) until it answers on `port`.
    static func start(_ argv: [String], port: Int) throws -> Running {
        let p = try Running(argv)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !p.process.isRunning {
                let r = p.wait(timeout: 1)
                throw ExpositionError(description: "irqscope serve exited \(r.status): \(r.stderr)")
            }
            if let r = try? httpGet("http://127.0.0.1:\(port)/healthz"), r.status == 200 { return p }
            usleep(100_000)
        }
        _ = p.stop()
        throw ExpositionError(description: "irqscope serve did not answer within 30 s: \(p.stderrSoFar)")
    }

    static func scrape(_ port: Int) throws -> ParsedExposition {
        let r = try httpGet("http://127.0.0.1:\(port)/metrics")
        guard r.status == 200 else { throw ExpositionError(description: "scrape status \(r.status): \(r.body)") }
        return try parseExposition(r.body)
    }

    /// IDs of the BPF programs loaded in the kernel now, by bpftool (independent of irqscope).
    static func bpfProgramIDs() throws -> Set<Int> {
        let r = try run(["bpftool", "-j", "prog", "show"])
        let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        return Set(list.compactMap { $0["id"] as? Int })
    }

    /// The kernel frees programs and links after an RCU grace period: give it a moment.
    static func eventually(_ seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// irqscope's programs loaded now (id: name), by their names' mechanism prefixes
    /// (BPF/common.h), and the links to them: what a run of irqscope may leave, and nothing that
    /// another BPF user of the host (systemd's cgroup programs) loads or frees meanwhile.
    static func irqscopeBPF() throws -> (programs: [Int: String], links: Set<Int>) {
        let prefixes = ["fentry__", "fexit__", "kprobe__", "kretprobe__", "tp_btf__", "raw_tp__"]
        let progs = try JSONSerialization.jsonObject(with: Data(try run(["bpftool", "-j", "prog", "show"]).stdout.utf8)) as? [[String: Any]] ?? []
        var programs: [Int: String] = [:]
        for p in progs {
            if let id = p["id"] as? Int, let name = p["name"] as? String, prefixes.contains(where: name.hasPrefix) { programs[id] = name }
        }
        let links = try JSONSerialization.jsonObject(with: Data(try run(["bpftool", "-j", "link", "show"]).stdout.utf8)) as? [[String: Any]] ?? []
        return (programs, Set(links.compactMap { l in (l["prog_id"] as? Int).flatMap { programs[$0] != nil ? l["id"] as? Int : nil } }))
    }

    static func bpfLinkIDs() throws -> Set<Int> {
        let r = try run(["bpftool", "-j", "link", "show"])
        let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        return Set(list.compactMap { $0["id"] as? Int })
    }
}

/// /proc/interrupts totals per irq (summed over CPUs): the kernel's own count.
func procInterrupts() throws -> [Int: UInt64] {
    let text = try String(contentsOfFile: "/proc/interrupts", encoding: .utf8)
    let lines = text.split(separator: "\n")
    let cpus = lines.first?.split(separator: " ").count ?? 0
    var out: [Int: UInt64] = [:]
    for line in lines.dropFirst() {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = fields.first, first.hasSuffix(":"), let irq = Int(first.dropLast()) else { continue }
        out[irq] = fields.dropFirst().prefix(cpus).compactMap { UInt64($0) }.reduce(0, +)
    }
    return out
}

/// O_DIRECT reads of a file on the root disk: block-device interrupts without a device of our own.
final class DiskLoad {
    let process: Running
    static let file = "/var/tmp/irqscope-test-load.img"

    init() throws {
        if !FileManager.default.fileExists(atPath: Self.file) {
            try run(["dd", "if=/dev/zero", "of=\(Self.file)", "bs=1M", "count=128", "oflag=direct", "status=none"])
        }
        process = try Running(["/bin/sh", "-c",
            "while :; do dd if=\(Self.file) of=/dev/null iflag=direct bs=4k status=none || exit 1; done"])
    }

    func stop() {
        // the shell stopped first, so that the dd it runs is the one killed; by pid, not by name:
        // another worktree's tests may run the same load on this host
        kill(process.pid, SIGSTOP)
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                  let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
                  pid_t(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) == process.pid else { return nil }
            return pid
        }
        kill(process.pid, SIGKILL)
        for child in children { kill(child, SIGKILL) }
        _ = process.wait(timeout: 5)
    }
}
