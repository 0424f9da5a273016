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
    private(set) lazy var kallsyms: Set<String> = readKallsyms()
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

    private func readKallsyms() -> Set<String> {
        let clock = ContinuousClock(), start = clock.now
        defer { kallsymsTime = clock.now - start }
        var names = Set<String>()
        guard let text = readFile("/proc/kallsyms", limit: 64 << 20) else { return names }
        for line in text.split(separator: "\n") {
            // "ffffffff813f9ea0 T request_threaded_irq\t[module]"
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count == 3 else { continue }
            let name = fields[2].split(separator: "\t", maxSplits: 1)[0]
            names.insert(String(name))
        }
        return names
    }
}

// include/uapi/linux/btf.h; the macros import ambiguously (the enum and its #define).
private let btfKindTypedef: UInt32 = 8
private let btfKindFunc: UInt32 = 12
