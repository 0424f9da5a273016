import CLibbpf
import CLibbpfWrap
import Glibc
import IrqscopeABI
import IrqscopeDecode
import IrqscopeHost
import Synchronization

/// irqscope's connection to the kernel: the BPF object loaded with the programs this kernel
/// accepts, attached, with a report of what is and is not covered.
public final class KernelSession: @unchecked Sendable {
    public struct Options: Sendable {
        public var allowed: Set<MechanismClass>
        public var libbpfDebug: Bool
        /// Load only these probe families (nil: all).
        public var families: Set<String>?
        /// Size of the event ring buffer (nil: the object's 4 MiB).
        public var ringBufferBytes: UInt32?
        /// Most irq slots per CPU (a power of two, IRQSCOPE_IRQ_SLOTS_MIN...MAX; nil: no cap).
        public var maxIRQSlots: UInt32?
        public init(allowed: Set<MechanismClass> = Set(MechanismClass.allCases), libbpfDebug: Bool = false,
                    families: Set<String>? = nil, ringBufferBytes: UInt32? = nil, maxIRQSlots: UInt32? = nil) {
            self.allowed = allowed
            self.libbpfDebug = libbpfDebug
            self.families = families
            self.ringBufferBytes = ringBufferBytes
            self.maxIRQSlots = maxIRQSlots
        }
    }

    public let report: ProbeReport
    let object: BPFObject
    public let maps: Maps

    /// Kernel statistics of every attached program (run counts and times need BPF stats on).
    public func programStats() -> [ProgramCost] { object.programStats() }
    var stream: EventStream?
    /// The counts and spurious arrays mapped in place; nil where the kernel would not map them.
    let counts: CountsMapping?
    let spuriousCounts: CountsMapping?
    let summedCPUs: SummedCPUs

    public struct Maps: Sendable {
        public var irqCounts: Int32
        public var irqSlots: UInt32
        public var cpus: UInt32
        public var spurious: Int32
        public var counters: Int32
        public var events: Int32
    }

    /// Checks privileges, loads and attaches. Throws one clear message when irqscope cannot
    /// run at all; anything less is reported per hook in `report`.
    public init(options: Options = Options()) throws(KernelError) {
        try Self.preflight()
        LibbpfLog.install(verbose: options.libbpfDebug)
        // where start-up time goes, reported: under emulation (the lab) it takes tens of seconds
        let clock = ContinuousClock(), started = clock.now
        var planning = Duration.zero, loading = Duration.zero, attaching = Duration.zero
        let early = Self.early.withLock { early in
            defer { early = nil }
            return early
        } ?? Self.starting()
        let facts = early.facts.join()
        planning += clock.now - started
        let waited = clock.now
        let (image, opened) = early.opening.join()
        loading += clock.now - waited
        var firstObject: Result<BPFObject, KernelError>? = opened
        let wanted = Self.irqSlots()
        let slots = min(wanted, options.maxIRQSlots ?? wanted)
        let cpus = libbpf_num_possible_cpus()
        guard cpus > 0 else { throw KernelError("cannot count possible CPUs: \(errnoName(cpus))") }
        let catalog = HookCatalog.families.filter { options.families?.contains($0.name) ?? true }

        let outcome = try Settle.run(plan: { failed in
            let planned = clock.now
            defer { planning += clock.now - planned }
            return AttachPlan(catalog: catalog, facts: facts, allowed: options.allowed, failed: failed,
                              variants: ["irq_handler_exit": "__\(slots)"])
        }, attempt: { plan throws(KernelError) -> Settle.Attempt<BPFObject> in
            let object: BPFObject
            if let first = firstObject {
                firstObject = nil
                object = try first.get()
            } else {
                object = try BPFObject(image: image, name: "irqscope")
            }
            object.setAutoload(Set(plan.programs.map(\.description)))
            try object.setMaxEntries(map: "irq_counts", slots * UInt32(cpus))
            try object.setReadOnly("arm_cpus", min(UInt32(cpus), UInt32(IRQSCOPE_ARM_CPUS_MAX)))
            if let bytes = options.ringBufferBytes { try object.setMaxEntries(map: "events", bytes) }
            _ = LibbpfLog.drain()
            let loadStart = clock.now
            let (code, refusedByVerifier) = object.load()
            loading += clock.now - loadStart
            if code != 0 {
                let log = LibbpfLog.drain()
                object.close()
                let refused = refusedByVerifier.isEmpty ? LibbpfLog.refusedPrograms(in: log) : refusedByVerifier
                let detail = refused.min { $0.key < $1.key }.map { " (\($0.key): \($0.value))" } ?? log.last.map { " (libbpf: \($0))" } ?? ""
                return .refused(refused, error: "cannot load the BPF object: \(errnoName(code))\(detail)")
            }
            do throws(KernelError) { try object.store(map: "geometry", irqscope_geometry(slots: slots, cpus: UInt32(cpus))) } catch {
                object.close()
                throw error
            }
            let attachStart = clock.now
            defer { attaching += clock.now - attachStart }
            var refused: [String: String] = [:]
            for (_, choice) in plan.choices.sorted(by: { $0.key < $1.key }) {
                for program in choice.programs {
                    if case .failure(let err) = object.attach(program: program.description) {
                        refused[program.description] = "attach failed: \(err.message)"
                        break
                    }
                }
            }
            guard refused.isEmpty else {
                object.close()
                let list = refused.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                return .refused(refused, error: "cannot attach: \(list.joined(separator: "; "))")
            }
            return .loaded(object)
        })

        let object = outcome.loaded
        guard let irqCounts = object.mapFD("irq_counts"), let spurious = object.mapFD("spurious_counts"),
              let counters = object.mapFD("counters"), let events = object.mapFD("events")
        else {
            object.close()
            throw KernelError("the BPF object lacks its maps")
        }
        let rounds = outcome.rounds
        // once: the maps are preallocated (arrays, LRU hashes, a ring buffer) and never grow
        let memory = object.mapMemory()
        self.object = object
        self.maps = Maps(irqCounts: irqCounts, irqSlots: slots, cpus: UInt32(cpus), spurious: spurious,
                         counters: counters, events: events)
        summedCPUs = SummedCPUs(possible: Int(cpus))
        counts = CountsMapping(fd: irqCounts, sliceBytes: Int(slots) * MemoryLayout<irqscope_irq_count>.stride, cpus: Int(cpus))
        spuriousCounts = CountsMapping(fd: spurious, sliceBytes: Int(IRQSCOPE_SPURIOUS_VECTORS) * 8, cpus: 1)
        self.report = ProbeReport(families: outcome.plan.families, kernel: [
            .init(name: "kernel", value: facts.release),
            .init(name: "BTF", value: facts.btf.detail),
            .init(name: "fentry/fexit", value: facts.trampolines.detail),
            .init(name: "kprobes", value: facts.kprobes.detail),
            .init(name: "irq slots", value: "\(slots) (irqs above \(slots - 1) are counted as untracked)"
                  + (slots < wanted ? "; capped by --bpf.max-irq-slots (the host's irqs would take \(wanted))" : "")),
            .init(name: "start-up", value: "\(Self.seconds(clock.now - started)) s in \(rounds) round\(rounds == 1 ? "" : "s"): "
                  + "planning \(Self.seconds(planning)) s" + (facts.kallsymsTime.map { " (/proc/kallsyms \(Self.seconds($0)) s)" } ?? "") + ", loading (verifier) \(Self.seconds(loading)) s, attaching \(Self.seconds(attaching)) s"),
        ] + (memory.unreported.isEmpty ? [] : [
            .init(name: "BPF map memory", value: "not stated by this kernel (no memlock in /proc/self/fdinfo) for \(memory.unreported.joined(separator: ", "))"),
        ]), posture: facts.posture, mapBytes: memory.bytes)
    }

    deinit { close() }

    typealias Opened = (image: [UInt8], object: Result<BPFObject, KernelError>)
    /// The work before planning, each part on a thread of its own while the caller goes on:
    /// - the first round's object opened, with the vmlinux BTF libbpf parses for the load (that
    ///   parse on a third thread where the build maps it);
    /// - the facts planning needs (kernel BTF indexed, a test fentry program loaded, sysfs).
    struct Early {
        let opening: Background<Opened>
        let facts: Background<KernelFacts>
    }
    private static let early = Mutex<Early?>(nil)

    private static func starting() -> Early {
        irqscope_prefetch_vmlinux_btf()
        return Early(opening: Background.start {
            let image = base64Decode(EmbeddedBPF.irqscope)
            do throws(KernelError) {
                let object = try BPFObject(image: image, name: "irqscope")
                object.parseKernelBTF()
                return (image, .success(object))
            } catch { return (image, .failure(error)) }
        }, facts: Background.start { KernelFacts.gather() })
    }

    /// Starts that work before the session is asked for, for `serve`, from its first
    /// instruction: parsing the command line, starting the web server's threads and binding
    /// take about as long. Only the test program reaches the kernel, and it is closed at once.
    public static func openEarly(libbpfDebug: Bool) {
        LibbpfLog.install(verbose: libbpfDebug)
        early.withLock { early in
            if early == nil { early = starting() }
        }
    }

    static func seconds(_ d: Duration) -> String {
        let (s, atto) = d.components
        let hundredths = Int((Double(s) + Double(atto) / 1e18) * 100 + 0.5)
        return "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + "\(hundredths % 100)"
    }

    /// Stops the event stream, detaches every link and frees the object.
    public func close() {
        stream?.stop()
        stream = nil
        counts?.unmap()
        spuriousCounts?.unmap()
        object.close()
    }

    /// Starts delivering ring-buffer records to `sink` on a dedicated thread.
    public func startEvents(_ sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(KernelError) {
        stream = try EventStream(mapFD: maps.events, sink: sink)
    }

    /// Hands any records already in the ring buffer to the sink (used before exit).
    public func drainEvents() { stream?.drain() }

    /// Set once the ring-buffer thread has stopped on a poll error: lifecycle events are no
    /// longer read.
    public var eventsFailure: KernelError? {
        guard let code = stream?.failedWith, code != 0 else { return nil }
        return .errno("the event ring buffer stopped: poll failed", code)
    }

    // MARK: - Privileges

    private static func preflight() throws(KernelError) {
        let caps = Capabilities.effective
        guard caps & Capabilities.bit("sys_admin") != 0 || caps & Capabilities.bit("bpf", "perfmon") == Capabilities.bit("bpf", "perfmon") else {
            let missing = ["bpf", "perfmon"].filter { caps & Capabilities.bit($0) == 0 }.map { "CAP_" + $0.uppercased() }
            throw KernelError("root, or CAP_BPF and CAP_PERFMON, is needed to load the BPF programs (running as uid \(getuid()) without \(missing.joined(separator: " and ")))")
        }
        var attr = bpf_map_create_opts()
        attr.sz = MemoryLayout<bpf_map_create_opts>.size
        let fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "irqscope_probe", 4, 8, 1, &attr)
        if fd >= 0 {
            Glibc.close(fd)
            return
        }
        let code = errno
        if code == ENOSYS { throw KernelError("this kernel has no bpf() system call (CONFIG_BPF_SYSCALL off)") }
        throw KernelError("the kernel refused a BPF map: \(errnoName(code)) (BPF restricted by seccomp or an LSM?)")
    }

    /// The slot counts delivery.h has programs for, and the least the host's irqs get.
    public static let irqSlotsMin = UInt32(IRQSCOPE_IRQ_SLOTS_MIN), irqSlotsMax = UInt32(IRQSCOPE_IRQ_SLOTS_MAX)
    public static let irqSlotsDefaultMin = UInt32(IRQSCOPE_IRQ_SLOTS_DEFAULT_MIN)

    /// Size of a CPU's slice of the per-irq counts: room for twice the highest irq in use now,
    /// so that irqs allocated later (guests starting) still fit. A power of two: the BPF object
    /// has a counting program for each.
    static func irqSlots() -> UInt32 {
        irqSlots(highest: listDirectory("/sys/kernel/irq").compactMap { Int($0) }.max() ?? 0)
    }

    public static func irqSlots(highest: Int) -> UInt32 {
        var slots = Int(IRQSCOPE_IRQ_SLOTS_DEFAULT_MIN)
        while slots < highest * 2 && slots < Int(IRQSCOPE_IRQ_SLOTS_MAX) { slots *= 2 }
        return UInt32(slots)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = self[...]
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String { self[...].trimmingCharacters(in: set) }
}

extension KernelSession {
    /// The family `serve` cannot do without.
    public static var coreFamily: String { HookCatalog.coreFamily }
}

extension KernelSession {
    public static var libbpfVersion: String { String(cString: libbpf_version_string()) }

    public var kernelRelease: String {
        report.kernel.first { $0.name == "kernel" }?.value ?? "unknown"
    }
}
