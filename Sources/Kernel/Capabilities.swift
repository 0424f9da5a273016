import CSys
import IrqscopeDecode

/// The capabilities irqscope holds once its programs are attached and its listeners bound.
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
    /// plus bpf where the kernel needs it: see `needed(for:)`).
    public static func mask(_ spec: String) throws(KernelError) -> UInt64? {
        if spec.isEmpty { throw KernelError("empty capability list (use auto, none, all or names like bpf,sys_ptrace)") }
        if spec == "all" { return nil }
        if spec == "none" || spec == "auto" { return 0 }
        var mask: UInt64 = 0
        for name in spec.split(separator: ",") {
            let key = name.lowercased().hasPrefix("cap_") ? String(name.lowercased().dropFirst(4)) : name.lowercased()
            guard let n = numbers[key] else { throw KernelError("unknown capability '\(name)'") }
            mask |= 1 << UInt64(n)
        }
        return mask
    }

    /// Drops every capability not in `mask`, for good (bounding set, no_new_privs). `user`: the
    /// uid and gid every thread switches to meanwhile (no supplementary groups), keeping `mask`.
    public static func keepOnly(_ mask: UInt64, switchingTo user: (uid: UInt32, gid: UInt32)? = nil) throws(KernelError) {
        if user != nil, effective & bit("setuid", "setgid") != bit("setuid", "setgid") {
            throw KernelError("cannot switch to uid \(user!.uid) without CAP_SETUID and CAP_SETGID (use --run-as=root to stay uid 0)")
        }
        let rc = irqscope_keep_capabilities(mask, user.map { Int64($0.uid) } ?? -1, user.map { Int64($0.gid) } ?? -1)
        if rc != 0 { throw KernelError("cannot drop capabilities: \(String(cString: irqscope_drop_failed_step())): \(errnoName(rc))") }
    }

    /// Call on the main thread before any other thread starts: every thread must be able to take
    /// the signal `keepOnly` sends (a blocked one inherited from the parent made it time out).
    public static func prepareThreads() { irqscope_unblock_drop_signal() }

    public static var effective: UInt64 { irqscope_effective_capabilities() }

    /// What serving needs once attached: nothing, except CAP_BPF on kernels that refuse every
    /// bpf() call to a thread without it (before 6.5, with unprivileged BPF disabled). Decided by
    /// trying a map read from a thread that has dropped everything.
    public static func needed(for session: KernelSession) -> UInt64 {
        irqscope_unprivileged_map_read(session.maps.counters, 8) == 0 ? 0 : bit("bpf")
    }

    public static func names(_ mask: UInt64) -> [String] {
        numbers.filter { mask & (1 << UInt64($0.value)) != 0 }.map(\.key).sorted()
    }
}
