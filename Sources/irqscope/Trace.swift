import ArgumentParser
import Glibc
import IrqscopeDecode
import IrqscopeHost
import IrqscopeKernel
import IrqscopeModel
import IrqscopeRender
import Synchronization

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow, live, what a guest's boot does to the host's interrupt plumbing; then a verdict.",
        discussion: """
            Attaches before COMMAND starts, so nothing is missed, and follows COMMAND and its children \
            until it exits; without COMMAND, until --duration or Ctrl-C.
            Exit status: 0, or with --fail-on: 3 lossy resizes, 4 failed requests, 5 lost interrupts \
            (the most severe that applies); 1 when irqscope itself fails, 64 for bad usage.
            """)

    @OptionGroup var trace: TraceOptions

    // unconditional: "-1" is a value to refuse, not an unknown flag
    @Option(parsing: .unconditional, help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: ArgumentHelp("Also write the raw event stream to FILE, for 'irqscope replay'.", valueName: "file"))
    var record: String?

    @OptionGroup var kernel: KernelOptions

    @Argument(parsing: .postTerminator, help: "A command to start and follow (a VMM), after '--'.")
    var command: [String] = []

    func validate() throws {
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("--duration must be a positive number of seconds") }
        if trace.pid != nil && !command.isEmpty { throw ValidationError("--pid and a command exclude each other") }
    }

    func run() throws {
        // from the start: a Ctrl-C while the programs load ends the trace cleanly too
        Interrupted.install()
        let resolver = ProcessResolver()
        try checkTargets(resolver)
        let executable = try command.first.map(resolveExecutable)

        let session = try kernel.openSession()
        for family in session.report.families where !family.available {
            printError("irqscope: not attached: \(family.name): this trace will miss it (\(family.cost))")
        }
        let followed = Followed(root: trace.pid)
        let color = isatty(1) != 0 && !trace.json
        let follows: (@Sendable (UInt32) -> Bool)? = trace.pid != nil || executable != nil ? followed.contains : nil
        let output = TraceOutput(options: trace, start: monotonicNow(), color: color, follows: follows)
        let collector: Collector
        do {
            collector = try Collector(session: session, record: record) { step, model in
                output.show(step, model: model)
            }
            try collector.start()
        } catch {
            session.close()
            throw error
        }

        var child: pid_t = 0
        if let executable {
            child = try spawn(executable, command)
            followed.root = UInt32(child)
        }
        let status = isatty(2) != 0 && !trace.json
        let started = monotonicNow()
        var childStatus: Int32?
        var pollFailure: Error?
        // once: a trace that cannot read the counters goes on with the events, and fails at the end
        func poll() {
            do { try collector.poll() } catch {
                if pollFailure == nil { printError("irqscope: \(error)") }
                pollFailure = pollFailure ?? error
            }
        }
        while !Interrupted.raised {
            if let duration, Double(monotonicNow() - started) / 1e9 >= duration { break }
            if child > 0 {
                var st: Int32 = 0
                if waitpid(child, &st, WNOHANG) == child { childStatus = st; break }
            }
            poll()
            if status {
                let line = collector.read { model, _ in TraceStatus(model).line(shown: output.eventsShown) }
                printError("\r\u{1b}[2K" + line, newline: false)
            }
            usleep(100_000)
        }
        poll()
        collector.stop()
        if status { printError("\r\u{1b}[2K", newline: false) }
        if let childStatus {
            printError("irqscope: \(command[0]) exited with status \(exitStatus(childStatus))")
        }
        let code = collector.read { model, lifecycles in
            output.finish(model: model, lifecycles: lifecycles, seconds: Double(monotonicNow() - started) / 1e9)
        }
        if pollFailure != nil { throw ExitCode.failure }
        if code != 0 { throw ExitCode(code) }
    }

    /// Bad targets fail before anything is attached.
    private func checkTargets(_ resolver: ProcessResolver) throws {
        if let device = trace.device, !resolver.pciDeviceExists(device) {
            throw FatalError(message: "no PCI device \(device) on this host")
        }
        if let pid = trace.pid, !resolver.alive(pid) {
            throw FatalError(message: "no process \(pid)")
        }
        if let guest = trace.guest, command.isEmpty {
            let running = resolver.runningGuests()
            if !running.contains(guest) {
                throw FatalError(message: "no running guest named '\(guest)'" + (running.isEmpty ? "" : " (running: \(running.sorted().joined(separator: ", ")))"))
            }
        }
    }

    private func resolveExecutable(_ name: String) throws -> String {
        if name.contains("/") {
            guard access(name, X_OK) == 0 else { throw FatalError(message: "cannot run \(name): not an executable file") }
            return name
        }
        for dir in (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        throw FatalError(message: "command not found: \(name)")
    }

    private func spawn(_ path: String, _ argv: [String]) throws -> pid_t {
        var pid: pid_t = 0
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let rc = posix_spawn(&pid, path, nil, nil, &cargs, environ)
        guard rc == 0 else { throw FatalError(message: "cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }
}

func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func exitStatus(_ st: Int32) -> String {
    let signal = st & 0x7f
    return signal == 0 ? String((st >> 8) & 0xff) : "killed by signal \(signal)"
}
