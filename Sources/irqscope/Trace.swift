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
        commandName: "trace",
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

    @Flag(name: .customLong("qemu-trace"),
          help: "With a QEMU command: turn on QEMU's own trace of its VFIO interrupt steps (vfio_msix_vector_do_use, ...) and merge it in, with the latency from a guest's unmask to the host's request_irq.")
    var qemuTrace = false

    @OptionGroup var kernel: KernelOptions

    @Argument(parsing: .postTerminator, help: "A command to start and follow (a VMM), after '--'.")
    var command: [String] = []

    func validate() throws {
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("--duration must be a positive number of seconds") }
        if trace.pid != nil && !command.isEmpty { throw ValidationError("--pid and a command exclude each other") }
        if qemuTrace && command.isEmpty { throw ValidationError("--qemu-trace needs the QEMU command to start, after '--'") }
        if qemuTrace, QEMUTap.runsQEMU(command), let refusal = QEMUTap.refusal(command) { throw ValidationError(refusal) }
    }

    func run() throws {
        // from the start: a Ctrl-C while the programs load ends the trace cleanly too
        Interrupted.install()
        let resolver = ProcessResolver()
        try checkTargets(resolver)
        let executable = try command.first.map(resolveExecutable)
        var tap: QEMUTap?
        if qemuTrace {
            if QEMUTap.runsQEMU(command) {
                tap = try QEMUTap()
            } else {
                printError("irqscope: --qemu-trace: no qemu-system-* in the command: tracing the host's side only")
            }
        }

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
            collector.seedPresent()
            try collector.start()
        } catch {
            session.close()
            throw error
        }

        var child: pid_t = 0
        if let executable {
            child = try spawn(executable, tap?.arguments(command) ?? command)
            tap?.spawned()
            followed.root = UInt32(child)
        }
        func readQEMU(waitingUpTo ms: Int32, last: Bool = false) {
            guard let tap else { return }
            for text in tap.read(waitingUpTo: ms, last: last) {
                guard let step = tap.step(text) else {
                    printError("\(text)")
                    continue
                }
                output.show(collector.apply(step))
            }
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
            if tap != nil {
                // QEMU's steps shown as they come, next to the host's they cause
                let until = monotonicNow() + 100_000_000
                var now = monotonicNow()
                while now < until && !Interrupted.raised {
                    readQEMU(waitingUpTo: Int32((until - now) / 1_000_000) + 1)
                    now = monotonicNow()
                }
            } else {
                usleep(100_000)
            }
        }
        poll()
        if let tap {
            // what QEMU wrote before it exited may still be on its way (through a wrapper's tee)
            let until = monotonicNow() + 1_000_000_000
            repeat { readQEMU(waitingUpTo: childStatus != nil ? 100 : 0) } while childStatus != nil && !tap.ended && monotonicNow() < until
            readQEMU(waitingUpTo: 0, last: true)
            let moved = (QEMUTap.measure().ns - tap.offset.ns) / 1000
            if abs(moved) > 1000 {
                printError("irqscope: --qemu-trace: the wall clock moved \(moved) µs against the monotonic clock during the trace: QEMU's later steps are off by up to that")
            }
        }
        collector.stop()
        if status { printError("\r\u{1b}[2K", newline: false) }
        if let childStatus {
            printError("irqscope: \(command[0]) exited with status \(exitStatus(childStatus))")
        }
        let unmasks = collector.unmasks
        let code = collector.read { model, lifecycles in
            output.finish(model: model, lifecycles: lifecycles, unmasks: unmasks, seconds: Double(monotonicNow() - started) / 1e9)
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
