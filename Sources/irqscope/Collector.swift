import IrqscopeDecode
import IrqscopeKernel
import IrqscopeModel
import IrqscopeRender
import Synchronization

/// The one-way flow, wired: kernel records are decoded and applied to the model as they
/// arrive; a scrape reads the kernel counters, updates the model and renders it.
final class Collector: Sendable {
    let session: KernelSession
    private let state: Mutex<State>
    private let build: HostMetrics.Build
    private let resolver = ProcessResolver()

    struct State {
        var model = HostModel()
        var recorder: RecordingWriter?
        var scrapes = 0

        /// Names what the event introduces: the VMM behind a VFIO device, the driver of a device.
        /// Read once from /proc and sysfs here, and kept in the recording for replay elsewhere.
        mutating func annotate(_ event: Event, resolver: ProcessResolver) {
            if let address = event.device, model.drivers[address] == nil || event.kind == .msixDisable {
                let driver = resolver.driver(of: address)
                if model.drivers[address] != driver || model.drivers.index(forKey: address) == nil {
                    model.note(driver: driver, of: address)
                    recorder?.annotate([("type", "device"), ("address", address), ("driver", driver ?? "")])
                }
            }
            let vfio: Bool
            switch event.kind {
            case .vfioSetIRQs: vfio = true
            case .requestIRQ(let name, _): vfio = name.hasPrefix("vfio-")
            default: vfio = false
            }
            if vfio && model.processes[event.tgid] == nil {
                let identity = resolver.identify(event.tgid, comm: event.comm)
                model.note(process: identity)
                recorder?.annotate([("type", "process"), ("tgid", String(identity.tgid)), ("name", identity.name),
                                      ("source", identity.source.rawValue)])
            }
        }
    }

    init(session: KernelSession, record path: String? = nil) throws {
        self.session = session
        self.build = .init(version: BuildInfo.version, libbpf: KernelSession.libbpfVersion, kernel: session.kernelRelease)
        var recorder: RecordingWriter?
        if let path {
            do { recorder = try RecordingWriter(path: path) } catch { throw FatalError(message: error.description) }
            recorder?.annotate([("type", "meta"), ("kernel", session.kernelRelease), ("irqscope", BuildInfo.version)])
        }
        state = Mutex(State(recorder: recorder))
    }

    func start() throws {
        do {
            try session.startEvents { [self] record in
                let event = try? Event(record: record)
                let bytes = Array(record)
                state.withLock { s in
                    s.recorder?.write(event: bytes)
                    guard let event else { return s.model.noteUndecodable() }
                    s.model.apply(event)
                    s.annotate(event, resolver: resolver)
                }
            }
        } catch {
            throw FatalError(message: error.message)
        }
    }

    /// One scrape. Serialised on the state lock: two snapshots applied out of order would
    /// look like a counter reset.
    func scrape(format: ExpositionFormat) throws -> String {
        let start = ContinuousClock.now
        return try state.withLock { s in
            let snapshot = try session.readDelivery()
            s.model.update(snapshot, irqs: SysfsIRQs.read())
            for tgid in s.model.trackedProcesses.sorted() where !resolver.alive(tgid) {
                s.model.processExited(tgid)
                s.recorder?.annotate([("type", "exit"), ("tgid", String(tgid))])
            }
            s.scrapes += 1
            s.recorder?.annotate([("type", "scrape"), ("seq", String(s.scrapes))])
            s.recorder?.flush()
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return render(HostMetrics.families(s.model, report: session.report, build: build, scrapeSeconds: seconds),
                          format: format)
        }
    }

    /// Stops the event stream and closes the recording with everything the kernel sent.
    func stop() {
        session.drainEvents()
        session.close()
        state.withLock { $0.recorder?.close() }
    }
}
