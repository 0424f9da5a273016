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

    func validate() throws {
        _ = try allowedMechanisms()
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
        return out
    }

    func openSession() throws -> KernelSession {
        do {
            return try KernelSession(options: .init(allowed: try allowedMechanisms(), libbpfDebug: libbpfDebug))
        } catch let error as KernelError {
            throw FatalError(message: error.message)
        }
    }
}
