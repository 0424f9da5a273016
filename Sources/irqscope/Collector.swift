import IrqscopeDecode
import IrqscopeHost
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

    /// Called for every event, under the state lock, with the names the model gives it.
    typealias Observer = @Sendable (Event, _ guest: String?, _ device: String?, _ model: HostModel) -> Void

    struct State {
        var model = HostModel()
        /// Kept only when tracing: a long-running exporter must not remember every vector ever seen.
        var lifecycles: Lifecycles?
        var recorder: RecordingWriter?
        var scrapes = 0

        /// Names what the event introduces: the VMM behind a VFIO device, the driver of a device.
        /// Read once from /proc and sysfs here, and kept in the recording for replay elsewhere.
        mutating func annotate(_ event: Event, resolver: ProcessResolver) {
            if let address = event.device, model.drivers[address] == nil || event.kind == .msixDisable {
                let driver = resolver.driver(of: address)
                if model.drivers[address] != driver || model.drivers.index(forKey: address) == nil {
                    model.note(driver: driver, of: address)
                    let line = resolver.intx(of: address)
                    if let line { model.note(line: line, of: address) }
                    recorder?.annotate([("type", "device"), ("address", address), ("driver", driver ?? "")]
                                       + (line.map { [("intx", String($0))] } ?? []))
                }
            }
            guard model.processes[event.tgid] == nil else { return }
            let vfio: Bool
            switch event.kind {
            case .vfioSetIRQs: vfio = true
            case .requestIRQ(let name, _): vfio = IRQName(name).isVFIO
            default: vfio = event.kind.isProcessCall && resolver.holdsVFIO(event.tgid)
            }
            if vfio {
                let identity = resolver.identify(event.tgid, comm: event.comm)
                model.note(process: identity)
                recorder?.annotate([("type", "process"), ("tgid", String(identity.tgid)), ("name", identity.name),
                                      ("source", identity.source.rawValue)])
            }
        }
    }

    private let observer: Observer?

    /// With an `observer` (trace), per-vector lifecycles are kept too.
    init(session: KernelSession, record path: String? = nil, observer: Observer? = nil) throws {
        self.session = session
        self.observer = observer
        self.build = .init(version: BuildInfo.version, libbpf: KernelSession.libbpfVersion, kernel: session.kernelRelease)
        var recorder: RecordingWriter?
        if let path {
            do { recorder = try RecordingWriter(path: path) } catch { throw FatalError(message: error.description) }
            recorder?.annotate([("type", "meta"), ("kernel", session.kernelRelease), ("irqscope", BuildInfo.version)])
        }
        state = Mutex(State(lifecycles: observer == nil ? nil : Lifecycles(), recorder: recorder))
    }

    func start() throws {
        do {
            try session.startEvents { [self] record in
                let event = try? Event(record: record)
                let bytes = Array(record)
                state.withLock { s in
                    guard let event else {
                        s.recorder?.write(event: bytes)
                        return s.model.noteUndecodable()
                    }
                    // the VMM is identified before its first call is named, and its annotation is
                    // recorded ahead of that call, so that a replay names it the same way
                    s.annotate(event, resolver: resolver)
                    s.recorder?.write(event: bytes)
                    // named before applying: a free removes what tells whose it was
                    let device = s.model.device(of: event)
                    let guest = s.model.guestName(of: event)
                    s.model.apply(event)
                    s.lifecycles?.apply(event, device: device)
                    if let observer {
                        observer(event, guest ?? s.model.guestName(of: event), device, s.model)
                    }
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
            let (snapshot, irqs) = try readCounters(into: &s)
            s.recorder?.annotate(snapshot.annotation(live: irqs.keys))
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

    /// Reads the kernel counters into the model without rendering (trace): vectors whose irq
    /// counted its first interrupt since the last look get that time.
    func poll() throws {
        try state.withLock { s in
            let before = s.model.kernel.irqs
            let (snapshot, irqs) = try readCounters(into: &s)
            // the time the counts were known by: after the read, which under emulation takes tens
            // of milliseconds (stamped before it, a look landed before the irq it saw was allocated)
            let now = monotonicNow()
            let fired = snapshot.irqs.filter { $0.value.interrupts > (before[$0.key]?.interrupts ?? 0) }.keys
            for irq in fired { s.lifecycles?.firstInterrupt(irq: irq, at: now) }
            if !fired.isEmpty {
                s.recorder?.annotate(snapshot.annotation(live: irqs.keys) + [("at", String(now))])
            }
        }
    }

    private func readCounters(into s: inout State) throws -> (DeliverySnapshot, [Int: IRQInfo]) {
        let snapshot = try session.readDelivery()
        let irqs = SysfsIRQs.read()
        s.model.update(snapshot, irqs: irqs)
        return (snapshot, irqs)
    }

    func read<T>(_ body: (HostModel, Lifecycles) -> T) -> T {
        state.withLock { body($0.model, $0.lifecycles ?? Lifecycles()) }
    }

    /// Stops the event stream and closes the recording with everything the kernel sent.
    func stop() {
        session.drainEvents()
        session.close()
        state.withLock { $0.recorder?.close() }
    }
}
