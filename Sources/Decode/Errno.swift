import Glibc

/// An errno as a value, with what failed; and the errno symbols for the values the interrupt and
/// BPF paths return. Linux x86-64 numbering; the table is written out so that recordings render
/// the same on any machine.
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    /// Positive.
    public var code: Int32
    /// What failed, as the message starts: "setresuid", "open /proc/1/status".
    public var context: String

    /// `code` positive or negative (-errno, as the kernel and our C shims return it).
    public init(_ code: Int32, _ context: String) {
        self.code = Int32(clamping: code.magnitude)
        self.context = context
    }

    /// "setresuid: EPERM (Operation not permitted)".
    public var description: String { "\(context): \(Self.name(code)) (\(String(cString: strerror(code))))" }

    public static func name(_ code: Int32) -> String { names[Int32(clamping: code.magnitude)] ?? "errno\(code.magnitude)" }

    /// The errno a failed kernel function returned as `result` (-errno). Clamped rather than
    /// converted: a kernel errno is at most 4095, but a recording can hold any 64-bit value.
    public static func of(result: Int64) -> Int32 { Int32(clamping: result.magnitude) }

    public static func name(result: Int64) -> String { name(of(result: result)) }

    static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 9: "EBADF",
        11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV",
        22: "EINVAL", 24: "EMFILE", 25: "ENOTTY", 28: "ENOSPC", 34: "ERANGE", 38: "ENOSYS", 95: "EOPNOTSUPP",
        98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 107: "ENOTCONN", 110: "ETIMEDOUT", 524: "ENOTSUPP",
    ]
}
