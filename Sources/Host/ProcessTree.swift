import Synchronization

extension ProcessResolver {
    /// The parent, from the PPid line of /proc/PID/status.
    public func parent(of tgid: UInt32) -> UInt32? {
        guard let status = readFile("\(root)proc/\(tgid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }) else { return nil }
        return UInt32(line.dropFirst(5).filter { !$0.isWhitespace })
    }

    /// Names of the processes that look like VMMs: those with a VFIO group or device open.
    public func runningGuests() -> Set<String> {
        var names = Set<String>()
        for entry in listDirectory("\(root)proc") {
            guard let pid = UInt32(entry), holdsVFIO(pid) else { continue }
            names.insert(identify(pid, comm: "").name)
        }
        return names
    }
}

/// The process tree being followed: the root and every process descended from it. Asked from the
/// ring-buffer thread per event, so each answer is kept (per root).
public final class Followed: Sendable {
    private let processes: ProcessResolver
    private let state = Mutex<(root: UInt32?, known: [UInt32: Bool])>((nil, [:]))

    public init(root: UInt32?, processes: ProcessResolver = ProcessResolver()) {
        self.processes = processes
        state.withLock { $0.root = root }
    }

    public var root: UInt32? {
        get { state.withLock { $0.root } }
        set { state.withLock { $0.root = newValue; $0.known = [:] } }
    }

    /// The walk up /proc runs outside the lock: the ring-buffer thread asks, and a slow /proc
    /// must not hold up the status line's reads of `root`.
    @Sendable public func contains(_ tgid: UInt32) -> Bool {
        let (root, known) = state.withLock { s in (s.root, s.known[tgid]) }
        guard let root else { return false }
        if let known { return known }
        var pid = tgid
        var result = false
        // bounded: a PPid chain read while processes exit and pids are reused can loop
        for _ in 0..<64 {
            if pid == root { result = true; break }
            guard pid > 1, let parent = processes.parent(of: pid) else { break }
            pid = parent
        }
        state.withLock { if $0.root == root { $0.known[tgid] = result } }
        return result
    }
}
