import CSys
import IrqscopeDecode

/// The capabilities irqscope keeps once it has bound its listeners, then attached its programs
/// (serve drops the rest after both).
public enum Capabilities {
    /// Names as in capabilities(7), without the CAP_ prefix.
    public static let numbers: [String: Int] = [
        "chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "kill": 5, "setgid": 6, "setuid": 7,
        "setpcap": 8, "net_bind_service": 10, "net_admin": 12, "ipc_lock": 14, "sys_ptrace": 19, "sys_admin": 21,
        "sys_resource": 24, "syslog": 34, "perfmon": 38, "bpf": 39,
    ]

    /// The mask of the named capabilities (names from `numbers`).
    public static func bit(_ names: String...) -> UInt64 {
        names.reduce(0) { $0 | 1 << UInt64(numbers[$1]!) }
    }

    /// Parses "auto", "none", "all" or a comma list like "bpf,sys_ptrace" ("auto" is "none",
    /// plus bpf where the kernel needs it: see `needed(for:)`). nil: keep all.
    public static func mask(_ spec: String) throws(CapabilityError) -> UInt64? {
        if spec.isEmpty { throw .emptyList }
        if spec == "all" { return nil }
        if spec == "none" || spec == "auto" { return 0 }
        var mask: UInt64 = 0
        for name in spec.split(separator: ",") {
            let key = name.lowercased().hasPrefix("cap_") ? String(name.lowercased().dropFirst(4)) : name.lowercased()
            guard let n = numbers[key] else { throw .unknown(String(name)) }
            mask |= 1 << UInt64(n)
        }
        return mask
    }

    /// Drops every capability not in `mask`, for good (bounding set, no_new_privs). `user`: the
    /// uid and gid every thread switches to meanwhile (no supplementary groups), keeping `mask`.
    public static func keepOnly(_ mask: UInt64, switchingTo user: (uid: UInt32, gid: UInt32)? = nil) throws(CapabilityError) {
        if let user, effective & bit("setuid", "setgid") != bit("setuid", "setgid") {
            throw .cannotSwitchUser(uid: user.uid)
        }
        let rc = irqscope_keep_capabilities(mask, user.map { Int64($0.uid) } ?? -1, user.map { Int64($0.gid) } ?? -1)
        if rc != 0 { throw .dropFailed(Errno(rc, String(cString: irqscope_drop_failed_step()))) }
    }

    /// Call on the main thread before any other thread starts: every thread must be able to take
    /// the signal `keepOnly` sends (a blocked one inherited from the parent made it time out).
    public static func prepareThreads() { irqscope_unblock_drop_signal() }

    public static var effective: UInt64 { irqscope_effective_capabilities() }

    public static func names(_ mask: UInt64) -> [String] {
        numbers.filter { mask & (1 << UInt64($0.value)) != 0 }.map(\.key).sorted()
    }
}

public enum CapabilityError: Error, Equatable, CustomStringConvertible {
    case emptyList
    case unknown(String)
    case cannotSwitchUser(uid: UInt32)
    case dropFailed(Errno)

    public var description: String {
        switch self {
        case .emptyList: "empty capability list (use auto, none, all or names like bpf,sys_ptrace)"
        case .unknown(let name): "unknown capability '\(name)'"
        case .cannotSwitchUser(let uid):
            "cannot switch to uid \(uid) without CAP_SETUID and CAP_SETGID (use --run-as=root to stay uid 0)"
        case .dropFailed(let errno): "cannot drop capabilities: \(errno)"
        }
    }
}
