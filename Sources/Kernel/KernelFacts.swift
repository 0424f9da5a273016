import CLibbpf
import Glibc
import IrqscopeDecode
import IrqscopeHost

/// What this kernel offers for attaching, as plain values. `gather` does the looking (sysfs,
/// BTF, kallsyms) and, for trampolines and bpf_get_func_ret, the trying; AttachPlan only reads
/// the result, so a test can plan for a kernel it does not run on.
struct KernelFacts: Sendable, Equatable {
    enum Availability: Sendable, Equatable {
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

    var release: String
    var btf: Availability
    var trampolines: Availability
    /// bpf_get_func_ret (helper 184, 5.17+), which every fexit program reads the return value with.
    var funcRet: Availability
    var kprobes: Availability
    /// The catalog's modules that are loaded or built in.
    var modules: Set<String>
    /// The catalog's functions in the BTF of the object that holds them (vmlinux or their module).
    var btfFunctions: Set<String>
    /// The catalog's tracepoints with a `btf_trace_<name>` typedef, which tp_btf needs.
    var btfTracepoints: Set<String>
    /// The catalog's tracepoints that exist at all (BTF or tracefs), by display name ("group:name").
    var tracepoints: Set<String>
    /// The catalog's functions that /proc/kallsyms lists (the kprobe fallback's test).
    var kallsyms: Set<String>
    /// How long reading /proc/kallsyms took (for the start-up report).
    var kallsymsTime: Duration?
    /// Whether MSI-X resizes can lose interrupts here (not used to plan: reported).
    var posture: HostPosture = .unknown
}

extension KernelFacts {
    /// Looks at this kernel for everything the catalog's hooks could need.
    static func gather(for catalog: [FamilySpec] = HookCatalog.families) -> KernelFacts {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }

        let hooks = catalog.flatMap { $0.alternatives.flatMap(\.hooks) }
        let vmlinux = KernelBTF(path: "/sys/kernel/btf/vmlinux") ?? libbpfVmlinuxBTF()
        let btf: Availability = vmlinux != nil
            ? .available("/sys/kernel/btf/vmlinux")
            : .unavailable(short: "no kernel BTF",
                           detail: "no kernel BTF (/sys/kernel/btf/vmlinux missing: CONFIG_DEBUG_INFO_BTF off); CO-RE programs cannot load")

        let kprobes: Availability
        if fileExists("/sys/bus/event_source/devices/kprobe/type") {
            kprobes = .available("kprobe PMU")
        } else if fileExists("/sys/kernel/tracing/kprobe_events") || fileExists("/sys/kernel/debug/tracing/kprobe_events") {
            kprobes = .available("tracefs kprobe_events")
        } else {
            kprobes = .unavailable(
                short: "kernel without kprobes (CONFIG_KPROBES off)",
                detail: "kernel without kprobes: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events (CONFIG_KPROBES off)")
        }

        let modules = Set(hooks.compactMap(\.module).filter { fileExists("/sys/module/\($0)") })
        // BTF of the kernel object that should hold a hook: vmlinux, or a module's split BTF (a
        // "module" built into the kernel has a /sys/module entry without initstate, and its
        // types in vmlinux).
        var moduleBTF: [String: KernelBTF?] = [:]
        func isBuiltin(_ module: String) -> Bool {
            fileExists("/sys/module/\(module)") && !fileExists("/sys/module/\(module)/initstate")
        }
        func btfFor(_ module: String?) -> KernelBTF? {
            guard let vmlinux else { return nil }
            guard let module, !isBuiltin(module) else { return vmlinux }
            if let cached = moduleBTF[module] { return cached }
            let loaded = KernelBTF(path: "/sys/kernel/btf/\(module)", base: vmlinux)
            moduleBTF[module] = loaded
            return loaded
        }
        let names = Set(hooks.map { hook in
            if case .tracepoint = hook.kind { return "btf_trace_\(hook.name)" } else { return hook.name }
        } + ["pci_msix_alloc_irq_at", trampolineTarget])
        var indexes: [String: BTFIndex] = [:]
        func has(_ name: String, kind: UInt32, module: String?) -> Bool {
            guard let b = btfFor(module) else { return false }
            let key = module.flatMap { isBuiltin($0) ? nil : $0 } ?? "vmlinux"
            if indexes[key] == nil { indexes[key] = b.index(names: names) }
            return indexes[key]!.id(name, kind: kind) != nil
        }

        var btfFunctions = Set<String>(), btfTracepoints = Set<String>(), tracepoints = Set<String>()
        var functionNames = Set<String>()
        for hook in hooks {
            switch hook.kind {
            case .function:
                functionNames.insert(hook.name)
                if has(hook.name, kind: btfKindFunc, module: hook.module) { btfFunctions.insert(hook.name) }
            case .tracepoint(let group):
                if has("btf_trace_\(hook.name)", kind: btfKindTypedef, module: hook.module) {
                    btfTracepoints.insert(hook.name)
                    tracepoints.insert(hook.displayName)
                } else if ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"]
                            .contains(where: { fileExists("\($0)/\(group)/\(hook.name)") }) {
                    tracepoints.insert(hook.displayName)
                }
            }
        }

        if let vmlinux, indexes["vmlinux"] == nil { indexes["vmlinux"] = vmlinux.index(names: names) }
        let (trampolines, funcRet) = probeTrampolines(indexes["vmlinux"].map { $0.id(trampolineTarget, kind: btfKindFunc) })
        let clock = ContinuousClock(), start = clock.now
        // /proc/kallsyms takes the kernel 70-90 ms to list: read only for what nothing else
        // tells, the kprobe fallback's functions where there are kprobes, and VFIO's static
        // functions where its module is there to have them
        var wanted = kprobes.ok ? functionNames : []
        if !has("pci_msix_alloc_irq_at", kind: btfKindFunc, module: nil) { wanted.insert("pci_msix_alloc_irq_at") }
        if fileExists("/sys/module/vfio_pci_core") { wanted.formUnion(["vfio_msi_alloc_irq", "vfio_irq_ctx_alloc"]) }
        let found = wanted.isEmpty ? [] : readKallsyms(wanted: wanted)
        let kallsymsTime = wanted.isEmpty ? nil : clock.now - start
        let symbols = HostPosture.KernelSymbols(
            allocAt: found.contains("pci_msix_alloc_irq_at") || has("pci_msix_alloc_irq_at", kind: btfKindFunc, module: nil),
            vfioHasDynMSIX: btfFor("vfio_pci_core").flatMap { $0.hasMember(struct: "vfio_pci_core_device", member: "has_dyn_msix") },
            vfioDynamicFunctions: found.contains("vfio_msi_alloc_irq") || found.contains("vfio_irq_ctx_alloc"))
        return KernelFacts(release: release, btf: btf, trampolines: trampolines, funcRet: funcRet, kprobes: kprobes,
                           modules: modules, btfFunctions: btfFunctions, btfTracepoints: btfTracepoints,
                           tracepoints: tracepoints, kallsyms: found.intersection(functionNames), kallsymsTime: kallsymsTime,
                           posture: HostPosture(symbols: symbols, files: .read()))
    }

    /// vmlinux BTF where /sys/kernel/btf has none: libbpf also looks for it in /boot's ELF files.
    private static func libbpfVmlinuxBTF() -> KernelBTF? {
        guard let btf = btf__load_vmlinux_btf() else { return nil }
        defer { btf__free(btf) }
        var size: UInt32 = 0
        guard let raw = btf__raw_data(btf, &size) else { return nil }
        return KernelBTF(copying: UnsafeRawBufferPointer(start: raw, count: Int(size)))
    }

    static let noFuncRet = "this kernel has no bpf_get_func_ret (helper 184, Linux 5.17+), which fexit programs use to read the return value"

    /// fentry/fexit need BPF trampolines; some kernels refuse them even to root. The only
    /// reliable test is to load one: an empty fentry program on a function that exists. Where
    /// that works, an fexit program calling bpf_get_func_ret tells whether the helper exists.
    /// `targetID`: nil without kernel BTF, .some(nil) when the target is not in it.
    private static func probeTrampolines(_ targetID: Int32??) -> (Availability, funcRet: Availability) {
        guard let targetID else {
            let no = Availability.unavailable(short: "no kernel BTF", detail: "BPF trampolines need kernel BTF")
            return (no, no)
        }
        let target = trampolineTarget
        guard let id = targetID else {
            let no = Availability.unavailable(short: "cannot be probed", detail: "cannot probe: \(target) not in kernel BTF")
            return (no, no)
        }
        var empty = [bpf_insn](repeating: bpf_insn(), count: 2)
        empty[0].code = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K: r0 = 0
        empty[1].code = 0x95 // BPF_JMP | BPF_EXIT
        let (fd, code, _) = loadTracing(&empty, attach: BPF_TRACE_FENTRY, btfID: UInt32(id), log: false)
        guard fd >= 0 else {
            let no: Availability = code == EPERM || code == EACCES
                ? .unavailable(
                    short: "not permitted by this kernel (\(Errno.name(code)) loading a trampoline)",
                    detail: "not permitted: the kernel refused a test fentry program with \(errnoName(code)) although irqscope holds the BPF capabilities (BPF trampolines are blocked on this host)")
                : .unavailable(short: "refused by this kernel (\(errnoName(code)))",
                               detail: "the kernel refused a test fentry program: \(errnoName(code))")
            return (no, .unavailable(short: no.short, detail: no.detail))
        }
        Glibc.close(fd)
        let trampolines = Availability.available("test fentry program on \(target) loaded")

        // u64 ret = 0; bpf_get_func_ret(ctx, &ret); return 0;
        var getRet = [bpf_insn](repeating: bpf_insn(), count: 6)
        getRet[0].code = 0x7a; getRet[0].dst_reg = 10; getRet[0].off = -8             // *(u64 *)(r10 - 8) = 0
        getRet[1].code = 0xbf; getRet[1].dst_reg = 2; getRet[1].src_reg = 10          // r2 = r10
        getRet[2].code = 0x07; getRet[2].dst_reg = 2; getRet[2].imm = -8              // r2 += -8
        getRet[3].code = 0x85; getRet[3].imm = 184                                    // call bpf_get_func_ret
        getRet[4].code = 0xb7                                                         // r0 = 0
        getRet[5].code = 0x95                                                         // exit
        let (retFD, retCode, log) = loadTracing(&getRet, attach: BPF_TRACE_FEXIT, btfID: UInt32(id), log: true)
        if retFD >= 0 {
            Glibc.close(retFD)
            return (trampolines, .available("test fexit program calling it loaded"))
        }
        // Only the verifier's own word that the helper is unknown counts: any other refusal is
        // left to the real load, whose failure is fed back to the plan.
        if log.contains("unknown#184") {
            return (trampolines, .unavailable(short: noFuncRet, detail: noFuncRet))
        }
        return (trampolines, .available("not determined: a test fexit program failed with \(errnoName(retCode))"))
    }

    private static func loadTracing(_ insns: inout [bpf_insn], attach: bpf_attach_type, btfID: UInt32,
                                    log wanted: Bool) -> (fd: Int32, errno: Int32, log: String) {
        var log = [CChar](repeating: 0, count: 4096)
        let (fd, code) = log.withUnsafeMutableBufferPointer { buf in
            var opts = bpf_prog_load_opts()
            opts.sz = MemoryLayout<bpf_prog_load_opts>.size
            opts.expected_attach_type = attach
            opts.attach_btf_id = btfID
            if wanted {
                opts.log_buf = buf.baseAddress
                opts.log_size = UInt32(buf.count)
                opts.log_level = 1
            }
            let fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "irqscope_probe", "GPL", &insns, insns.count, &opts)
            return (fd, errno)
        }
        return (fd, code, String(cString: log))
    }

    /// Only names in `wanted` are kept: the file has 100,000-200,000 lines, and turning each into
    /// a String took 12-13 s of a 16 s start-up in the lab's emulated guests. Lines are matched as
    /// bytes, by length first.
    private static func readKallsyms(wanted: Set<String>) -> Set<String> {
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

/// The function the trampoline test attaches an empty fentry program to.
private let trampolineTarget = "request_threaded_irq"
