import ArgumentParser
import Glibc
import IrqscopeDecode
import IrqscopeHost
import IrqscopeKernel
import IrqscopeRender
import IrqscopeServer
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// 10341: above the 9100-9999 block (fully allocated since 2023), clear of the ports known
/// exporters and Kubernetes components use.
let defaultListenAddress = ":10341"

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        // named, not derived from the type: deriving demangles the type name, a quarter of
        // the command-line parse at start-up
        commandName: "serve",
        abstract: "Serve Prometheus metrics about interrupts, vectors and guests on this host.")

    @Option(name: .customLong("web.listen-address"),
            help: ArgumentHelp("Address to listen on, repeatable: :PORT, HOST:PORT or [IPV6]:PORT. Default \(defaultListenAddress).",
                               valueName: "address"))
    var listenAddresses: [String] = []

    @Option(name: .customLong("web.telemetry-path"), help: "Path under which to expose metrics.")
    var telemetryPath = "/metrics"

    @Option(name: .customLong("web.config.file"),
            help: ArgumentHelp("TLS and basic authentication, in the Prometheus exporter-toolkit format.", valueName: "file"))
    var webConfigFile: String?

    @Option(name: .customLong("log.level"), help: "Log level: debug, info, warning, error.")
    var logLevel = "info"

    @Flag(help: "Exit with an error if any probe family cannot attach (default: serve what is available).")
    var strict = false

    @Option(help: ArgumentHelp("Also write every lifecycle event to FILE, for 'irqscope replay' elsewhere.", valueName: "file"))
    var record: String?

    @Option(name: .customLong("capabilities.keep"),
            help: ArgumentHelp("Capabilities every thread keeps once the programs are attached and the listeners bound: auto (none, plus bpf on kernels before 6.5 that need it to read maps), none, all, or a list like bpf,sys_ptrace (sys_ptrace lets irqscope read a KubeVirt pod's hostname when QEMU has no -name).",
                               valueName: "caps"))
    var capabilitiesKeep = "auto"

    @Option(name: .customLong("run-as"),
            help: ArgumentHelp("Started as root: the uid[:gid] every thread switches to once attached (e.g. 65534 for nobody), or root (the default: uid 0 without capabilities, which can still read a root VMM's /proc/PID/fd and name its guest).",
                               valueName: "uid[:gid]"))
    var runAs: String?

    @Option(name: .customLong("web.max-requests"),
            help: "Requests answered at once, counting responses still being written to slow readers; more get 503 (0: no limit).")
    var maxRequests = ServerLimits().maxRequests

    @Option(name: .customLong("web.max-connections"),
            help: "Open connections; at the limit each new one closes the connection idle the longest.")
    var maxConnections = ServerLimits().maxConnections

    @Option(name: .customLong("web.read-timeout"),
            help: ArgumentHelp("A request must arrive within this of its first byte (of the connection's start for the first).", valueName: "duration"))
    var readTimeout = "10s"

    @Option(name: .customLong("web.idle-timeout"),
            help: ArgumentHelp("A kept-alive connection is closed after this long without a request.", valueName: "duration"))
    var idleTimeout = "2m"

    @Option(name: .customLong("web.write-timeout"),
            help: ArgumentHelp("A client that has not taken its response within this is dropped.", valueName: "duration"))
    var writeTimeout = "30s"

    @Option(name: .customLong("collector.irq.name-include"),
            help: ArgumentHelp("Only irqs whose name (their actions, as in /proc/interrupts) matches this regular expression get irqscope_interrupts_total series (exclusive of name-exclude).", valueName: "regex"))
    var irqNameInclude: String?

    @Option(name: .customLong("collector.irq.name-exclude"),
            help: ArgumentHelp("No per-irq series for irqs whose name matches this regular expression.", valueName: "regex"))
    var irqNameExclude: String?

    @Option(name: .customLong("collector.irq.device-include"),
            help: ArgumentHelp("Only irqs of PCI devices whose address matches get per-irq series (irqs of no device have an empty address).", valueName: "regex"))
    var irqDeviceInclude: String?

    @Option(name: .customLong("collector.irq.device-exclude"),
            help: ArgumentHelp("No per-irq series for irqs of PCI devices whose address matches.", valueName: "regex"))
    var irqDeviceExclude: String?

    @Flag(name: .customLong("collector.irq.per-irq"), inversion: .prefixedNo,
          help: "Per-irq series (irqscope_interrupts_total, _unhandled_total); with --no-collector.irq.per-irq only the per-device, per-guest and host series remain.")
    var perIRQ = true

    func irqFilter() throws -> IRQSeriesFilter {
        do {
            return try IRQSeriesFilter(nameInclude: irqNameInclude, nameExclude: irqNameExclude, deviceInclude: irqDeviceInclude,
                                       deviceExclude: irqDeviceExclude, perIRQ: perIRQ)
        } catch { throw ValidationError("--collector.irq.\(error.description)") }
    }

    @OptionGroup var kernel: KernelOptions

    func validate() throws {
        guard telemetryPath.hasPrefix("/") else { throw ValidationError("--web.telemetry-path must start with '/'") }
        guard !["/", "/healthz", "/probes"].contains(telemetryPath) && !telemetryPath.contains("?") else {
            throw ValidationError("--web.telemetry-path \(telemetryPath) would hide another page (/ is the landing page, /healthz the health check, /probes the probe report)")
        }
        _ = try limits()
        _ = try runAsIDs()
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log.level: unknown level '\(logLevel)' (use debug, info, warning or error)")
        }
        for address in listenAddresses {
            do { _ = try ListenAddress(parsing: address) } catch { throw ValidationError("--web.listen-address: \(error)") }
        }
        do { _ = try Capabilities.mask(capabilitiesKeep) } catch { throw ValidationError("--capabilities.keep: \(error)") }
        _ = try irqFilter()
    }

    func limits() throws -> ServerLimits {
        var limits = ServerLimits()
        guard maxRequests >= 0 else { throw ValidationError("--web.max-requests must be 0 (no limit) or more") }
        guard maxConnections >= 1 else { throw ValidationError("--web.max-connections must be at least 1") }
        limits.maxRequests = maxRequests
        limits.maxConnections = maxConnections
        limits.readTimeout = try duration(readTimeout, "--web.read-timeout")
        limits.idleTimeout = try duration(idleTimeout, "--web.idle-timeout")
        limits.writeTimeout = try duration(writeTimeout, "--web.write-timeout")
        return limits
    }

    /// Prometheus's duration syntax, one unit: 500ms, 10s, 2m, 1h.
    func duration(_ text: String, _ flag: String) throws -> TimeAmount {
        for (suffix, unit) in [("ms", Int64(1_000_000)), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)] {
            guard text.hasSuffix(suffix), let n = Int64(text.dropLast(suffix.count)), n > 0, n <= Int64.max / unit else { continue }
            return .nanoseconds(n * unit)
        }
        throw ValidationError("\(flag): '\(text)' is not a positive duration like 500ms, 10s, 2m or 1h")
    }

    /// Who to become when started as root; nil stays uid 0.
    func runAsIDs() throws -> (uid: UInt32, gid: UInt32)? {
        // Not switching by default: as uid 65534 the exporter lost the VMMs' names in the lab (a root
        // VMM's /proc/PID/fd is mode 0500, and its guest went unnamed), which is what it is for.
        guard let runAs else { return nil }
        if runAs == "root" || runAs == "0" || runAs == "0:0" { return nil }
        let parts = runAs.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let uid = UInt32(parts[0]), let gid = UInt32(parts.last!), uid != 0, uid != UInt32.max,
              gid != UInt32.max else {
            throw ValidationError("--run-as: '\(runAs)' is not uid[:gid] (numbers, uid not 0) or root")
        }
        return (uid, gid)
    }

    func run() async throws {
        try await prepare().run()
    }

    /// Everything that needs privileges, synchronously: bind the listeners (an address in use
    /// ends the start before anything is attached), load and attach, then drop capabilities on
    /// every thread, the event loops' included (capabilities are per thread).
    func prepare() throws -> Running {
        Capabilities.prepareThreads()
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "irqscope")
        let addresses = try (listenAddresses.isEmpty ? [defaultListenAddress] : listenAddresses).map {
            try ListenAddress(parsing: $0)
        }
        var web = WebConfig()
        if let webConfigFile {
            do { web = try WebConfig.load(path: webConfigFile) } catch { throw FatalError(message: error.description) }
        }
        let limits = try self.limits()
        raiseDescriptorLimit(needed: limits.maxConnections, logger: logger)
        // Bound before attaching: an address in use or not on this host ends the start at once,
        // not after every program is attached (and again at each systemd restart).
        let server: HTTPServer
        do { server = try HTTPServer.bind(addresses, web: web, limits: limits, logger: logger) } catch {
            throw FatalError(message: error.description)
        }
        try stopIfInterrupted(logger) {}

        let session = try kernel.openSession()
        try stopIfInterrupted(logger) { session.close() }
        logProbes(session.report, logger: logger)
        if strict, let missing = session.report.families.first(where: { !$0.available }) {
            session.close()
            throw FatalError(message: "--strict: probe family \(missing.name) is unavailable (run 'irqscope doctor')")
        }
        guard DoctorReport.canServe(session.report, coreFamily: KernelSession.coreFamily) else {
            session.close()
            throw FatalError(message: "the \(KernelSession.coreFamily) probe did not attach; nothing to serve (run 'irqscope doctor')")
        }
        let collector: Collector
        do {
            collector = try Collector(session: session, record: record, irqs: try irqFilter())
        } catch {
            session.close()
            throw error
        }
        // said once: an operator restarting the exporter sees that the running guests were found
        let present = collector.seedPresent()
        logger.info("devices found at start", metadata: [
            "devices": "\(present.filter { if case .present = $0 { true } else { false } }.count)",
            "guests": "\(present.compactMap { if case .process(let p) = $0 { p.name } else { nil } }.joined(separator: ","))"])
        try stopIfInterrupted(logger) { collector.stop() }
        // The listeners are bound and the web config read: nothing left needs root's files or ports.
        // uid 0 without CAP_SETUID (a container granted only BPF and PERFMON) cannot switch: an
        // error when asked for (keepOnly says so)
        let user = getuid() == 0 ? try runAsIDs() : nil
        let keepMask: UInt64?
        do { keepMask = try Capabilities.mask(capabilitiesKeep) } catch {
            collector.stop()
            throw FatalError(message: "--capabilities.keep: \(error)")
        }
        if var keep = keepMask {
            if capabilitiesKeep == "auto" { keep |= Capabilities.needed(for: session) }
            do { try Capabilities.keepOnly(keep, switchingTo: user) } catch {
                collector.stop()
                throw FatalError(message: error.description)
            }
            logger.info("capabilities dropped", metadata: ["kept": "\(Capabilities.names(Capabilities.effective).joined(separator: ","))",
                                                           "uid": "\(getuid())", "gid": "\(getgid())"])
        }
        do { try collector.start() } catch {
            collector.stop()
            throw error
        }
        try stopIfInterrupted(logger) { collector.stop() }
        server.serve(Routes(collector: collector, telemetryPath: telemetryPath, report: session.report).handle)
        logger.info("serving metrics", metadata: [
            "listen": "\(server.boundAddresses.joined(separator: ","))", "path": "\(telemetryPath)",
            "tls": "\(web.tls != nil)", "basic_auth": "\(web.auth != nil)"])
        return Running(collector: collector, server: server, logger: logger, jobsLoop: ConcurrencyOnEventLoop.install())
    }

    /// A SIGTERM or SIGINT during start-up: what is set up so far is undone (programs detached,
    /// the recording closed with its end mark) and irqscope exits 0, as it would once serving.
    private func stopIfInterrupted(_ logger: Logger, _ undo: () -> Void) throws {
        guard Interrupted.raised else { return }
        undo()
        logger.info("stopped by a signal during start-up: every BPF link detached, object freed")
        throw ExitCode.success
    }

    struct Running {
        let collector: Collector
        let server: HTTPServer
        let logger: Logger
        /// Where Swift concurrency's jobs run (ConcurrencyOnEventLoop); nil: libdispatch's workers.
        let jobsLoop: (any EventLoop)?

        func run() async throws {
            defer {
                collector.stop()
                logger.info("stopped: every BPF link detached, object freed")
            }
            let group = ServiceGroup(configuration: .init(
                services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            // ServiceGroup ignores the signals and listens itself from its start; one that reached
            // start-up's handler in between is passed on. Two looks, not a poll; on the jobs'
            // event loop where there is one (Task.sleep would wake libdispatch's workers)
            let passOn = { @Sendable in if Interrupted.raised { Task { await group.triggerGracefulShutdown() } } }
            var looks: [Scheduled<Void>] = []
            for delay in [100, 1000] {
                if let jobsLoop { looks.append(jobsLoop.scheduleTask(in: .milliseconds(Int64(delay)), passOn)) }
                else { Task { try? await Task.sleep(for: .milliseconds(delay)); passOn() } }
            }
            defer { for look in looks { look.cancel() } }
            try await group.run()
        }
    }

    /// Go raises its soft descriptor limit to the hard one at start; Swift does not, and systemd's
    /// soft default is 1024. Each connection is a descriptor.
    private func raiseDescriptorLimit(needed connections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        // BPF programs, links and maps take about 100 descriptors
        if limit.rlim_cur < rlim_t(connections + 128) {
            logger.warning("the descriptor limit is below --web.max-connections plus what BPF needs: new connections may be refused",
                           metadata: ["nofile": "\(limit.rlim_cur)", "max_connections": "\(connections)"])
        }
    }

    private func logProbes(_ report: ProbeReport, logger: Logger) {
        for fact in report.kernel {
            logger.info("kernel", metadata: [fact.name: "\(fact.value)"])
        }
        for family in report.families {
            // Hooks that failed for the same reason are named together, the reason once.
            var reasons: [(why: String, hooks: [String])] = []
            var attached: [String] = []
            for hook in family.hooks {
                switch hook.state {
                case .attached(let m, let fallback): attached.append("\(hook.name)=\(m)" + (fallback.map { " (instead of \($0))" } ?? ""))
                case .unavailable(let why):
                    if let i = reasons.firstIndex(where: { $0.why == why }) { reasons[i].hooks.append(hook.name) }
                    else { reasons.append((why, [hook.name])) }
                case .standby: break
                }
            }
            let why = reasons.map { "\($0.hooks.joined(separator: ", ")): \($0.why)" }.joined(separator: " | ")
            if family.available {
                var metadata: Logger.Metadata = ["family": "\(family.name)", "hooks": "\(attached.joined(separator: " "))"]
                if !why.isEmpty { metadata["not attached"] = "\(why)" }
                logger.info("probe family attached", metadata: metadata)
            } else {
                logger.warning("probe family unavailable", metadata: [
                    "family": "\(family.name)", "why": "\(why)", "cost": "\(family.cost)"])
            }
        }
    }
}

/// `/`, `/healthz`, `/probes` and the telemetry path.
struct Routes: Sendable {
    let collector: Collector
    let telemetryPath: String
    /// What this exporter attached and what not, for /probes as `irqscope doctor --json` prints
    /// it (doctor would attach everything a second time to say what the running exporter already
    /// knows). Rendered when asked for: rendering it at start delayed the first scrape by a
    /// millisecond.
    let report: ProbeReport
    /// Start-up's memory is handed back once the first scrape is answered (releaseFreedMemory).
    let scraped = FirstScrape()

    final class FirstScrape: Sendable {
        private let done = Atomic<Bool>(false)
        func once(_ body: () -> Void) { if !done.exchange(true, ordering: .relaxed) { body() } }
    }

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse(status: 405, contentType: "text/plain; charset=utf-8", body: "method not allowed\n")
        }
        switch request.path {
        case telemetryPath:
            let format = ExpositionFormat.negotiate(accept: request.header("Accept"))
            do {
                let bytes = try collector.scrape(format: format)
                // 100 ms: the response is written by then
                scraped.once { releaseFreedMemory(afterMicroseconds: 100_000) }
                return HTTPResponse(status: 200, contentType: format.contentType, bytes: bytes)
            } catch {
                return HTTPResponse(status: 500, contentType: "text/plain; charset=utf-8", body: "scrape failed: \(error)\n")
            }
        case "/healthz":
            return HTTPResponse(status: 200, contentType: "text/plain; charset=utf-8", body: "ok\n")
        case "/probes":
            return HTTPResponse(status: 200, contentType: "application/json",
                                body: DoctorReport.json(report, coreFamily: KernelSession.coreFamily).text + "\n")
        case "/":
            return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: """
                <!DOCTYPE html>
                <html><head><title>irqscope</title></head>
                <body><h1>irqscope</h1>
                <p>Interrupts, MSI-X vectors, IRTEs and CPU vectors on this hypervisor.</p>
                <ul><li><a href="\(telemetryPath)">Metrics</a></li><li><a href="/probes">Probes</a> (as <code>irqscope doctor --json</code>)</li>
                <li><a href="/healthz">Health</a></li></ul>
                </body></html>

                """)
        default:
            return HTTPResponse(status: 404, contentType: "text/plain; charset=utf-8", body: "not found\n")
        }
    }
}
