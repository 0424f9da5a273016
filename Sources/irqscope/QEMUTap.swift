import Glibc
import IrqscopeDecode

/// trace --qemu-trace: QEMU's own trace of its VFIO interrupt steps (its log backend), read through
/// a pipe QEMU inherits and opens as `-D /proc/self/fd/N`, so the user's stderr stays QEMU's.
/// `-msg timestamp=on` stamps each line with gettimeofday(2) in µs (it also stamps QEMU's
/// messages on stderr); the offset to CLOCK_MONOTONIC is read once, at the start.
final class QEMUTap {
    /// Guest-visible MSI-X and MSI steps, not the per-interrupt ones (vfio_msi_interrupt,
    /// vfio_intx_interrupt), which under TCG come by the thousand.
    static let events = ["vfio_msix_*", "vfio_msi_enable", "vfio_msi_disable", "vfio_msi_setup",
                         "vfio_intx_enable", "vfio_intx_disable"]

    let offset: WallClockOffset
    private let readFD: Int32
    private var writeFD: Int32
    private var partial: [UInt8] = []
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    /// Every writer closed the pipe: QEMU (and whatever it passed the pipe to) is gone.
    private(set) var ended = false

    /// Whether a command runs QEMU: an argument whose basename starts with qemu-system (QEMU may
    /// be behind chroot, a shell wrapper, ...).
    static func runsQEMU(_ argv: [String]) -> Bool {
        argv.contains { $0.split(separator: "/").last?.hasPrefix("qemu-system") ?? false }
    }

    /// QEMU has one log file: a -D of the user's would be taken over silently (the last -D wins),
    /// so it is refused rather than emptied.
    static func refusal(_ argv: [String]) -> String? {
        guard let d = argv.firstIndex(where: { $0 == "-D" || $0 == "--D" }) else { return nil }
        let file = d + 1 < argv.count ? " \(argv[d + 1])" : ""
        return "--qemu-trace takes QEMU's log (-D) for itself; drop '\(argv[d])\(file)' "
            + "(--record keeps every line QEMU traced, and --json prints them)"
    }

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw FatalError(message: "--qemu-trace: pipe: \(String(cString: strerror(errno)))") }
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // room for a burst while irqscope prints: a full pipe stalls QEMU's vCPU thread in write(2)
        _ = fcntl(readFD, 1031 /* F_SETPIPE_SZ */, 1 << 20)
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
        offset = Self.measure()
    }

    deinit {
        close(readFD)
        if writeFD >= 0 { close(writeFD) }
    }

    /// The command with QEMU's trace turned on, into this pipe. The write end is made inheritable
    /// here: call just before spawning, then `spawned()`.
    func arguments(_ argv: [String]) -> [String] {
        _ = fcntl(writeFD, F_SETFD, 0)
        return argv + Self.events.flatMap { ["-trace", $0] } + ["-msg", "timestamp=on", "-D", "/proc/self/fd/\(writeFD)"]
    }

    /// Only QEMU holds the write end now: its exit ends the pipe.
    func spawned() {
        close(writeFD)
        writeFD = -1
    }

    /// The lines QEMU wrote, waiting up to `ms` for the first; a line cut at the end of what is
    /// there waits for the rest. `last`: QEMU is gone, a line without its newline is whole.
    func read(waitingUpTo ms: Int32, last: Bool = false) -> [Substring] {
        var p = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        if ms > 0 { _ = poll(&p, 1, ms) }
        var lines: [Substring] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { ended = true }
            guard n > 0 else { break }
            partial += buffer[0..<n]
        }
        guard let end = partial.lastIndex(of: 0x0a) else {
            if last && !partial.isEmpty { defer { partial = [] }; return [Substring(decoding: partial, as: UTF8.self)] }
            return []
        }
        for line in partial[...end].split(separator: 0x0a) { lines.append(Substring(decoding: line, as: UTF8.self)) }
        partial.removeFirst(end + 1)
        if last && !partial.isEmpty { lines.append(Substring(decoding: partial, as: UTF8.self)); partial = [] }
        return lines
    }

    /// A stamped trace line as a step; nil for anything else QEMU logs there (printed to stderr,
    /// where QEMU prints its log without -D).
    func step(_ text: Substring) -> VMMStep? {
        guard let line = QEMUTraceLine(text), let wall = line.wallUs else { return nil }
        return VMMStep(at: offset.monotonic(wallUs: wall), line: line)
    }

    /// CLOCK_REALTIME less CLOCK_MONOTONIC, from the closest of a few back-to-back reads.
    static func measure() -> WallClockOffset {
        func read(_ clock: clockid_t) -> Int64 {
            var ts = timespec()
            clock_gettime(clock, &ts)
            return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        }
        var best: (gap: Int64, ns: Int64) = (.max, 0)
        for _ in 0..<8 {
            let m1 = read(CLOCK_MONOTONIC), real = read(CLOCK_REALTIME), m2 = read(CLOCK_MONOTONIC)
            if m2 - m1 < best.gap { best = (m2 - m1, real - (m1 + (m2 - m1) / 2)) }
        }
        return WallClockOffset(ns: best.ns)
    }
}
