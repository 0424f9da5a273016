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
    private let resolver: ProcessResolver

    /// Called for every event, in order (from the ring-buffer thread), named as it was when it
    /// happened, with the model as the event left it.
    typealias Observer = @Sendable (Pipeline.Step, _ model: HostModel) -> Void

    struct State {
        var pipeline: Pipeline
        var recorder: RecordingWriter?
        var scrapes = 0
        var recordingFailed = false

        mutating func record(_ annotation: Annotation) { recorder?.write(annotation) }
    }

    private let observer: Observer?
    private let irqs: IRQSeriesFilter
    private let lookup: Pipeline.Lookup
    /// Looks at the kernel counters, one at a time: two snapshots applied out of order would look
    /// like a counter reset. Apart from `state`, so that the ring-buffer thread waits only while
    /// a snapshot is applied, not while it is read, nor while a scrape renders.
    private let looking = Mutex(SysfsIRQs.Cache())
    /// Raised by every lifecycle event: irq names and devices are read again from sysfs.
    private let events = Atomic<UInt64>(0)

    /// With an `observer` (trace), per-vector lifecycles are kept too, and exited VMMs' devices.
    init(session: KernelSession, record path: String? = nil, irqs: IRQSeriesFilter = .all, observer: Observer? = nil) throws {
        self.session = session
        self.irqs = irqs
        self.observer = observer
        self.build = .init(version: BuildInfo.version, libbpf: KernelSession.libbpfVersion, kernel: session.kernelRelease)
        let resolver = ProcessResolver()
        self.resolver = resolver
        lookup = Pipeline.Lookup(driver: { resolver.driver(of: $0) }, intx: { resolver.intx(of: $0) },
                                 lineActions: { resolver.actions(ofIRQ: $0) },
                                 holdsVFIO: { resolver.holdsVFIO($0) }, identify: { resolver.identify($0, comm: $1) })
        var recorder: RecordingWriter?
        if let path {
            do { recorder = try RecordingWriter(path: path) } catch { throw FatalError(message: error.description) }
            recorder?.write(.meta(kernel: session.kernelRelease, irqscope: BuildInfo.version))
        }
        let tracing = observer != nil
        state = Mutex(State(pipeline: Pipeline(lifecycles: tracing, keepExited: tracing), recorder: recorder))
    }

    /// The devices that hold MSI/MSI-X irqs already, recorded and applied before any event: the
    /// programs are attached (`session`), so whatever changes after this look is in the ring
    /// buffer, to be applied after it. Before capabilities are dropped: config space past its
    /// header, and a root VMM's /proc/PID/fd, need them.
    @discardableResult
    func seedPresent(_ devices: PresentDevices = PresentDevices()) -> [Annotation] {
        let found = devices.annotations()
        return state.withLock { s in
            defer { s.reportRecordingFailure() }
            for a in found {
                s.record(a)
                s.pipeline.apply(a)
            }
            return found
        }
    }

    func start() throws {
        do {
            try session.startEvents { [self] record in
                events.add(1, ordering: .relaxed)
                let event = try? Event(record: record)
                let bytes = Array(record)
                let shown: (Pipeline.Step, HostModel)? = state.withLock { s in
                    defer { s.reportRecordingFailure() }
                    guard let event else {
                        s.recorder?.write(event: bytes)
                        s.pipeline.undecodable()
                        return nil
                    }
                    // the VMM is identified before its first call is named, and that is recorded
                    // ahead of the call, so that a replay names it the same way
                    for a in s.pipeline.lookUp(event, with: lookup) { s.record(a) }
                    s.recorder?.write(event: bytes)
                    let step = s.pipeline.apply(event)
                    return observer == nil ? nil : (step, s.pipeline.model)
                }
                // outside the lock: following a process tree reads /proc, and printing may block
                if let observer, let (step, model) = shown { observer(step, model) }
            }
        } catch {
            throw FatalError(message: error.message)
        }
    }

    /// One scrape: the model as the kernel's counters leave it, rendered outside every lock.
    func scrape(format: ExpositionFormat) throws -> [UInt8] {
        let start = ContinuousClock.now
        // what the kernel reported before the scrape is in it: the ring buffer's thread may be
        // behind (seconds, in a 1-vCPU lab guest after 20,000 events); before the locks, which
        // the events' delivery takes
        session.drainEvents()
        let model = try look(at: nil) { s in
            for exit in s.pipeline.exits(alive: resolver.alive) { s.record(exit) }
            s.scrapes += 1
            s.record(.scrape(seq: s.scrapes))
            s.recorder?.flush()
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // read only when counted: a bpf_obj_get_info_by_fd per program is wasted otherwise
        let costs = bpfStatsEnabled() ? session.programStats() : nil
        return renderBytes(HostMetrics.families(model, report: session.report, build: build, scrapeSeconds: seconds,
                                           programCosts: costs, irqs: irqs), format: format)
    }

    /// Reads the kernel counters into the model without rendering (trace).
    func poll() throws {
        // the time the counts were known by: after the read, which under emulation takes tens
        // of milliseconds (stamped before it, a look landed before the irq it saw was allocated)
        _ = try look(at: { monotonicNow() }) { $0.recorder?.flushIfDue() }
    }

    /// The counters and sysfs are read holding only `looking`; `then` runs under the state lock
    /// with the snapshot applied. Returns the model as it left it.
    private func look(at now: (() -> UInt64)?, then: (inout State) -> Void) throws -> HostModel {
        try looking.withLock { names in
            // counting on with lifecycle events missing would look like a quiet host
            if let failure = session.eventsFailure { throw FatalError(message: failure.message) }
            let generation = events.load(ordering: .relaxed)
            // irqs beyond the counts array have no count of their own (they are in the untracked
            // total): a series for one would sit at zero while it fires
            let slots = Int(session.maps.irqSlots)
            let irqs = names.read(generation: generation).filter { $0.key < slots }
            // only irqs that exist can have counted: slots are sized for twice the highest irq,
            // and a 256-CPU host reads every CPU's slice at each scrape
            let snapshot = try session.readDelivery(irqsBelow: (irqs.keys.max() ?? -1) + 1)
            let at = now?()
            return state.withLock { s in
                defer { s.reportRecordingFailure() }
                if let a = s.pipeline.look(snapshot, irqs: irqs, at: at) { s.record(a) }
                then(&s)
                return s.pipeline.model
            }
        }
    }

    /// A line of the VMM's own trace, applied and recorded in the order it is read; returned to
    /// be shown (outside the lock, as events are).
    func apply(_ step: VMMStep) -> Pipeline.VMMShown {
        state.withLock { s in
            defer { s.reportRecordingFailure() }
            s.record(.vmmStep(step))
            return s.pipeline.apply(step)
        }
    }

    var unmasks: GuestUnmasks? { state.withLock { $0.pipeline.unmasks } }

    func read<T>(_ body: (HostModel, Lifecycles) -> T) -> T {
        state.withLock { body($0.pipeline.model, $0.pipeline.lifecycles ?? Lifecycles()) }
    }

    /// Stops the event stream and closes the recording with everything the kernel sent.
    func stop() {
        session.drainEvents()
        session.close()
        state.withLock { s in
            s.recorder?.close()
            s.reportRecordingFailure()
        }
    }
}

extension Collector.State {
    /// Once: the exporter or trace goes on without its recording.
    mutating func reportRecordingFailure() {
        guard !recordingFailed, let failure = recorder?.failure else { return }
        recordingFailed = true
        printError("irqscope: \(failure.description)")
    }
}
