import ArgumentParser
import IrqscopeDecode
import IrqscopeKernel
import IrqscopeRender
import IrqscopeServer
import Logging
import ServiceLifecycle

/// 10341: above the 9100-9999 block (fully allocated since 2023), clear of the ports known
/// exporters and Kubernetes components use.
let defaultListenAddress = ":10341"

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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

    @OptionGroup var kernel: KernelOptions

    func validate() throws {
        guard telemetryPath.hasPrefix("/") else { throw ValidationError("--web.telemetry-path must start with '/'") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log.level: unknown level '\(logLevel)' (use debug, info, warning or error)")
        }
        for address in listenAddresses {
            do { _ = try ListenAddress(parsing: address) } catch { throw ValidationError("--web.listen-address: \(error)") }
        }
        do { _ = try Capabilities.mask(capabilitiesKeep) } catch { throw ValidationError("--capabilities.keep: \(error)") }
    }

    func run() async throws {
        try await prepare().run()
    }

    /// Everything that needs privileges, synchronously, on the calling thread: load and attach,
    /// bind the listeners, then drop capabilities. Call it before anything has started another
    /// thread (capabilities are per thread; threads created afterwards inherit the reduced set).
    func prepare() throws -> Running {
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

        let session = try kernel.openSession()
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
            collector = try Collector(session: session, record: record)
        } catch {
            session.close()
            throw error
        }
        if var keep = try? Capabilities.mask(capabilitiesKeep) {
            if capabilitiesKeep == "auto" { keep |= Capabilities.needed(for: session) }
            // ports below 1024 are bound after the drop, by the event loop thread
            if addresses.contains(where: { $0.port < 1024 }) { keep |= Capabilities.bit("net_bind_service") }
            do { try Capabilities.keepOnly(keep) } catch {
                collector.stop()
                throw FatalError(message: error.message)
            }
            logger.info("capabilities dropped", metadata: ["kept": "\(Capabilities.names(Capabilities.effective).joined(separator: ","))"])
        }
        let server: HTTPServer
        do {
            try collector.start()
            server = try HTTPServer.bind(addresses, web: web, logger: logger,
                                         handler: Routes(collector: collector, telemetryPath: telemetryPath).handle)
        } catch {
            collector.stop()
            if let error = error as? ServerError { throw FatalError(message: error.description) }
            throw error
        }
        logger.info("serving metrics", metadata: [
            "listen": "\(server.boundAddresses.joined(separator: ","))", "path": "\(telemetryPath)",
            "tls": "\(web.tls != nil)", "basic_auth": "\(!web.users.isEmpty)"])
        return Running(collector: collector, server: server, logger: logger)
    }

    struct Running {
        let collector: Collector
        let server: HTTPServer
        let logger: Logger

        func run() async throws {
            defer {
                collector.stop()
                logger.info("stopped: every BPF link detached, object freed")
            }
            let group = ServiceGroup(configuration: .init(
                services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
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

/// `/`, `/healthz` and the telemetry path.
struct Routes: Sendable {
    let collector: Collector
    let telemetryPath: String

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse(status: 405, contentType: "text/plain; charset=utf-8", body: "method not allowed\n")
        }
        switch request.path {
        case telemetryPath:
            let format = ExpositionFormat.negotiate(accept: request.header("Accept"))
            do {
                return HTTPResponse(status: 200, contentType: format.contentType, body: try collector.scrape(format: format))
            } catch {
                return HTTPResponse(status: 500, contentType: "text/plain; charset=utf-8", body: "scrape failed: \(error)\n")
            }
        case "/healthz":
            return HTTPResponse(status: 200, contentType: "text/plain; charset=utf-8", body: "ok\n")
        case "/":
            return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: """
                <!DOCTYPE html>
                <html><head><title>irqscope</title></head>
                <body><h1>irqscope</h1>
                <p>Interrupts, MSI-X vectors, IRTEs and CPU vectors on this hypervisor.</p>
                <ul><li><a href="\(telemetryPath)">Metrics</a></li><li><a href="/healthz">Health</a></li></ul>
                <p>Probe status: run <code>irqscope doctor</code> on this host.</p>
                </body></html>

                """)
        default:
            return HTTPResponse(status: 404, contentType: "text/plain; charset=utf-8", body: "not found\n")
        }
    }
}
