import CLibbpf
import Glibc
import IrqscopeDecode

/// What this kernel offers for attaching: decided by looking (sysfs, BTF, kallsyms) and, for
/// trampolines, by trying. Used only while loading, on one thread.
final class KernelFacts {
    enum Availability: Equatable {
        case available(String)
        /// `short` goes on each affected hook's line, `detail` in the kernel section.
        case unavailable(short: String, detail: String)
        var ok: Bool { if case .available = self { true } else { false } }
        var short: String {
            switch self {
            case .available(let s): s
            case .unavailable(let s, _): s
            }
        }
        var detail: String {
            switch self {
            case .available(let s): s
            case .unavailable(_, let d): d
            }
        }
    }

    let release: String
    private let vmlinuxBTF: OpaquePointer?
    private var moduleBTF: [String: OpaquePointer?] = [:]
    /// The catalog's functions that /proc/kallsyms lists (the kprobe fallback's test).
    private(set) lazy var kallsyms: Set<String> = readKallsyms(wanted: Set(HookCatalog.families.flatMap { $0.alternatives.joined() }
        .filter { if case .function = $0.kind { true } else { false } }.map(\.name)))
    /// How long reading /proc/kallsyms took, once it was read (for the start-up report).
    private(set) var kallsymsTime: Duration?
    let btf: Availability
    private(set) var trampolines: Availability = .unavailable(short: "not probed", detail: "not probed")
    let kprobes: Availability

    init() {
        var u = utsname()
        uname(&u)
        release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }

        vmlinuxBTF = btf__load_vmlinux_btf()
        btf = vmlinuxBTF != nil
            ? .available("/sys/kernel/btf/vmlinux")
            : .unavailable(short: "no kernel BTF",
                           detail: "no kernel BTF (/sys/kernel/btf/vmlinux missing: CONFIG_DEBUG_INFO_BTF off); CO-RE programs cannot load")

        if fileExists("/sys/bus/event_source/devices/kprobe/type") {
            kprobes = .available("kprobe PMU")
        } else if fileExists("/sys/kernel/tracing/kprobe_events") || fileExists("/sys/kernel/debug/tracing/kprobe_events") {
            kprobes = .available("tracefs kprobe_events")
        } else {
            kprobes = .unavailable(
                short: "kernel without kprobes (CONFIG_KPROBES off)",
                detail: "kernel without kprobes: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events (CONFIG_KPROBES off)")
        }
        trampolines = probeTrampolines()
    }

    deinit {
        for case let btf? in moduleBTF.values { btf__free(btf) }
        if let vmlinuxBTF { btf__free(vmlinuxBTF) }
    }

    /// BTF of the kernel object that should hold `name`: vmlinux, or a module's split BTF
    /// (a "module" built into the kernel has its types in vmlinux).
    private func btfFor(module: String?) -> OpaquePointer? {
        guard let vmlinuxBTF else { return nil }
        guard let module, !isBuiltin(module) else { return vmlinuxBTF }
        if let cached = moduleBTF[module] { return cached }
        let loaded = fileExists("/sys/kernel/btf/\(module)") ? btf__load_module_btf(module, vmlinuxBTF) : nil
        moduleBTF[module] = loaded
        return loaded
    }

    func moduleLoaded(_ module: String) -> Bool { fileExists("/sys/module/\(module)") }

    /// Built-in modules have a /sys/module entry but no initstate (and no BTF file of their own).
    func isBuiltin(_ module: String) -> Bool {
        fileExists("/sys/module/\(module)") && !fileExists("/sys/module/\(module)/initstate")
    }

    func hasFunction(_ name: String, module: String?) -> Bool {
        guard let btf = btfFor(module: module) else { return false }
        return btf__find_by_name_kind(btf, name, btfKindFunc) > 0
    }

    /// tp_btf needs the `btf_trace_<name>` typedef the kernel emits for each tracepoint.
    func hasTracepointBTF(_ name: String, module: String?) -> Bool {
        guard let btf = btfFor(module: module) else { return false }
        return btf__find_by_name_kind(btf, "btf_trace_\(name)", btfKindTypedef) > 0
    }

    /// Whether the tracepoint exists at all (raw_tp): BTF when we have it, else tracefs.
    func tracepointExists(group: String, name: String, module: String?) -> Bool {
        if hasTracepointBTF(name, module: module) { return true }
        for base in ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"] {
            if fileExists("\(base)/\(group)/\(name)") { return true }
        }
        return false
    }

    /// fentry/fexit need BPF trampolines; some kernels refuse them even to root. The only
    /// reliable test is to load one: an empty fentry program on a function that exists.
    private func probeTrampolines() -> Availability {
        guard let vmlinuxBTF else { return .unavailable(short: "no kernel BTF", detail: "BPF trampolines need kernel BTF") }
        let target = "request_threaded_irq"
        let id = btf__find_by_name_kind(vmlinuxBTF, target, btfKindFunc)
        guard id > 0 else {
            return .unavailable(short: "cannot be probed", detail: "cannot probe: \(target) not in kernel BTF")
        }
        var insns = [bpf_insn](repeating: bpf_insn(), count: 2)
        insns[0].code = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K: r0 = 0
        insns[1].code = 0x95 // BPF_JMP | BPF_EXIT
        var opts = bpf_prog_load_opts()
        opts.sz = MemoryLayout<bpf_prog_load_opts>.size
        opts.expected_attach_type = BPF_TRACE_FENTRY
        opts.attach_btf_id = UInt32(id)
        let fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "irqscope_probe", "GPL", &insns, 2, &opts)
        if fd >= 0 {
            Glibc.close(fd)
            return .available("test fentry program on \(target) loaded")
        }
        let code = errno
        if code == EPERM || code == EACCES {
            return .unavailable(
                short: "not permitted by this kernel (\(Errno.name(code)) loading a trampoline)",
                detail: "not permitted: the kernel refused a test fentry program with \(errnoName(code)) although irqscope holds the BPF capabilities (BPF trampolines are blocked on this host)")
        }
        return .unavailable(short: "refused by this kernel (\(errnoName(code)))",
                            detail: "the kernel refused a test fentry program: \(errnoName(code))")
    }

    /// Only names in `wanted` are kept: the file has 100,000-200,000 lines, and turning each into
    /// a String took 12-13 s of a 16 s start-up in the lab's emulated guests. Lines are matched as
    /// bytes, by length first.
    private func readKallsyms(wanted: Set<String>) -> Set<String> {
        let clock = ContinuousClock(), start = clock.now
        defer { kallsymsTime = clock.now - start }
        var byLength: [Int: [[UInt8]]] = [:]
        for name in wanted { byLength[name.utf8.count, default: []].append(Array(name.utf8)) }
        var found = Set<String>()
        guard let bytes = readBytes("/proc/kallsyms", limit: 64 << 20) else { return found }
        bytes.withUnsafeBufferPointer { buf in
            // "ffffffff813f9ea0 T request_threaded_irq\t[module]\n": the name is the third field
            var i = 0
            let n = buf.count
            while i < n {
                var spaces = 0
                while i < n && spaces < 2 && buf[i] != 0x0A { if buf[i] == 0x20 { spaces += 1 }; i += 1 }
                let nameStart = i
                while i < n && buf[i] != 0x0A && buf[i] != 0x09 { i += 1 }
                if spaces == 2, let candidates = byLength[i - nameStart] {
                    for c in candidates where c.withUnsafeBufferPointer({ memcmp($0.baseAddress!, buf.baseAddress! + nameStart, c.count) == 0 }) {
                        found.insert(String(decoding: c, as: UTF8.self))
                    }
                }
                while i < n && buf[i] != 0x0A { i += 1 }
                i += 1
            }
        }
        return found
    }
}

// include/uapi/linux/btf.h; the macros import ambiguously (the enum and its #define).
private let btfKindTypedef: UInt32 = 8
private let btfKindFunc: UInt32 = 12
