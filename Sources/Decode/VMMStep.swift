/// One line of QEMU's trace log (its `log` backend, `-trace EVENT -D FILE`), as Debian's QEMU 7.2
/// and 10.0 print it: `NAME ARGS`, or with `-msg timestamp=on` `TID@SEC.USEC:NAME ARGS`, where
/// SEC.USEC is gettimeofday(2) (wall clock, microseconds) and TID the printing thread.
public struct QEMUTraceLine: Sendable, Equatable {
    public var tid: UInt32?
    /// Wall-clock microseconds since the epoch; nil on a line printed without `-msg timestamp=on`.
    public var wallUs: UInt64?
    /// The trace event, e.g. `vfio_msix_vector_do_use`.
    public var name: String
    /// What QEMU printed after the name, trimmed.
    public var args: String

    public init(tid: UInt32? = nil, wallUs: UInt64? = nil, name: String, args: String) {
        self.tid = tid
        self.wallUs = wallUs
        self.name = name
        self.args = args
    }

    /// nil for a line that is not a trace event (QEMU logs other messages to -D too).
    public init?(_ line: Substring) {
        var rest = line
        if let at = rest.firstIndex(of: "@"), let colon = rest[at...].firstIndex(of: ":"),
           let tid = UInt32(rest[..<at]) {
            // "%d@%zu.%06zu:" (scripts/tracetool/backend/log.py)
            let stamp = rest[rest.index(after: at)..<colon].split(separator: ".", omittingEmptySubsequences: false)
            guard stamp.count == 2, stamp[1].count == 6, let sec = UInt64(stamp[0]), let usec = UInt64(stamp[1]) else { return nil }
            self.tid = tid
            wallUs = sec * 1_000_000 + usec
            rest = rest[rest.index(after: colon)...]
        }
        let name = rest.prefix { $0 != " " && $0 != "\t" }
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else { return nil }
        self.name = String(name)
        args = String(rest.dropFirst(name.count).drop { $0 == " " || $0 == "\t" })
        while args.last == " " || args.last == "\r" { args.removeLast() }
    }

    /// The line as QEMU printed it.
    public var text: String {
        let stamp = wallUs.map { "\(tid ?? 0)@\($0 / 1_000_000).\(sixDigits($0 % 1_000_000)):" } ?? ""
        return stamp + name + (args.isEmpty ? "" : " " + args)
    }

    /// The VFIO device the event names: `(0000:00:05.0)` in most, a bare address in
    /// vfio_msix_early_setup and vfio_msi_setup (QEMU's vbasedev->name, the host= address).
    public var device: String? {
        guard name.hasPrefix("vfio_") else { return nil }
        for word in args.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" || $0 == "," }) where isPCIName(word) {
            return String(word)
        }
        return nil
    }

    /// The MSI-X vector of vfio_msix_vector_do_use ("vector N used") and vfio_msix_vector_release.
    public var vector: Int? {
        guard name == "vfio_msix_vector_do_use" || name == "vfio_msix_vector_release" else { return nil }
        let words = args.split(separator: " ")
        guard let i = words.firstIndex(of: "vector"), i + 1 < words.count else { return nil }
        return Int(words[i + 1])
    }
}

/// One step of a VMM, from its own trace, dated on the kernel's clock.
public struct VMMStep: Sendable, Equatable {
    /// CLOCK_MONOTONIC ns: the line's wall-clock stamp less the offset measured at the start of
    /// the trace, or, for a line without a stamp, when irqscope read it.
    public var at: UInt64
    public var line: QEMUTraceLine

    public init(at: UInt64, line: QEMUTraceLine) {
        self.at = at
        self.line = line
    }
}

/// CLOCK_REALTIME less CLOCK_MONOTONIC, in ns, as read at the start of a trace: a wall-clock
/// stamp in µs less it is a monotonic time (to the µs; a clock step during the trace shifts it).
public struct WallClockOffset: Sendable, Equatable {
    public var ns: Int64
    public init(ns: Int64) { self.ns = ns }

    public func monotonic(wallUs: UInt64) -> UInt64 {
        UInt64(clamping: Int64(clamping: wallUs &* 1000) &- ns)
    }
}

private func sixDigits(_ v: UInt64) -> String {
    let s = String(v)
    return String(repeating: "0", count: max(0, 6 - s.count)) + s
}

/// pci_name(): DDDD:BB:SS.F
func isPCIName(_ s: Substring) -> Bool {
    let parts = s.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].count == 4, parts[1].count == 2 else { return false }
    let slot = parts[2].split(separator: ".", omittingEmptySubsequences: false)
    return slot.count == 2 && slot[0].count == 2 && slot[1].count == 1
        && (parts[0] + parts[1] + slot[0] + slot[1]).allSatisfy(\.isHexDigit)
}
