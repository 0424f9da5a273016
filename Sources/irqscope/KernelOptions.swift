import ArgumentParser
import IrqscopeKernel

/// Options shared by every command that attaches to the kernel.
struct KernelOptions: ParsableArguments {
    @Option(name: .customLong("attach"),
            help: ArgumentHelp("Attach mechanisms to allow, comma-separated: fentry (fentry/fexit), kprobe (kprobe/kretprobe), tp_btf, raw_tp. Default: all, each hook taking the first that works.",
                               valueName: "mechanisms"))
    var attach: String = "auto"

    @Flag(name: .customLong("debug.libbpf"), help: "Print libbpf's own log to stderr.")
    var libbpfDebug = false

    @Option(name: .customLong("debug.ring-buffer-bytes"),
            help: ArgumentHelp("Size of the lifecycle event ring buffer (a power of two, at least one page; default 4 MiB). Smaller makes drops likely; they are counted.", visibility: .hidden))
    var ringBufferBytes: UInt32?

    // Bounds the counts map, possible CPUs x slots x 48 bytes: 384 MiB at 32768 slots and 256 CPUs.
    @Option(name: .customLong("bpf.max-irq-slots"),
            help: ArgumentHelp("Most irq numbers counted per CPU: a power of two from \(KernelSession.irqSlotsMin) to \(KernelSession.irqSlotsMax). The counts take this x possible CPUs x 48 bytes of kernel memory; interrupts on higher irqs are counted in irqscope_interrupts_untracked_total. Default: no cap (twice the highest irq, at least \(KernelSession.irqSlotsDefaultMin)).",
                               valueName: "slots"))
    var maxIRQSlots: UInt32?

    func validate() throws {
        _ = try allowedMechanisms()
        if let n = maxIRQSlots, n < KernelSession.irqSlotsMin || n > KernelSession.irqSlotsMax || n & (n - 1) != 0 {
            throw ValidationError("--bpf.max-irq-slots must be a power of two from \(KernelSession.irqSlotsMin) to \(KernelSession.irqSlotsMax), not \(n)")
        }
        if let n = ringBufferBytes, n < 4096 || n & (n - 1) != 0 {
            throw ValidationError("--debug.ring-buffer-bytes must be a power of two of at least 4096")
        }
    }

    func allowedMechanisms() throws -> Set<MechanismClass> {
        if attach == "auto" { return Set(MechanismClass.allCases) }
        var out = Set<MechanismClass>()
        for item in attach.split(separator: ",") {
            guard let m = MechanismClass(rawValue: String(item)) else {
                throw ValidationError("--attach: unknown mechanism '\(item)' (use fentry, kprobe, tp_btf, raw_tp or auto)")
            }
            out.insert(m)
        }
        if out.isEmpty { throw ValidationError("--attach: no mechanism given (use fentry, kprobe, tp_btf, raw_tp or auto)") }
        return out
    }

    func openSession() throws -> KernelSession {
        do {
            return try KernelSession(options: .init(allowed: try allowedMechanisms(), libbpfDebug: libbpfDebug,
                                                    ringBufferBytes: ringBufferBytes, maxIRQSlots: maxIRQSlots))
        } catch let error as KernelError {
            throw FatalError(message: error.message)
        }
    }
}
