import ArgumentParser
import Glibc
import IrqscopeKernel

@main
struct Irqscope: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irqscope",
        abstract: "What really happens to interrupts on a hypervisor: MSI-X vectors, IRTEs and CPU vectors per guest.",
        version: BuildInfo.version,
        subcommands: [Serve.self, Doctor.self, Trace.self, Replay.self]
    )

    /// Every failure ends as one line naming the problem and a non-zero exit; ArgumentParser's
    /// own help and version output is left to it.
    static func main() async {
        // a recording past a file size limit fails its write (EFBIG, reported) instead of killing irqscope
        signal(SIGXFSZ, SIG_IGN)
        // before the command line is parsed (5-10 ms): the object opened and kernel BTF parsed on
        // a second thread by the time serve loads (KernelSession.openEarly)
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "serve" && !arguments.contains(where: { $0 == "--help" || $0 == "-h" }) {
            KernelSession.openEarly(libbpfDebug: arguments.contains("--debug.libbpf"))
        }
        do {
            var command = try parseAsRoot()
            if let serve = command as? Serve {
                // a signal during start-up (loading BPF can take seconds) ends it cleanly, exit 0
                Interrupted.install()
                // the privileged phase runs here, synchronously, before the service starts
                let running = try serve.prepare()
                try await running.run()
            } else if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
        } catch let error as FatalError {
            printError("irqscope: \(error.message)")
            Glibc.exit(error.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            printError("irqscope: \(message) (see 'irqscope --help')")
            Glibc.exit(code.rawValue)
        }
    }
}

/// An error that ends the process with one line.
struct FatalError: Error {
    var message: String
    var code: Int32 = 1
}

func printError(_ line: String, newline: Bool = true) {
    let text = !newline || line.hasSuffix("\n") ? line : line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

func printOut(_ text: String) {
    _ = text.withCString { write(1, $0, strlen($0)) }
}

enum BuildInfo {
    static let version = "0.1.0"
}
