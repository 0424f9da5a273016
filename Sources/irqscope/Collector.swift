import IrqscopeDecode
import IrqscopeKernel
import IrqscopeModel
import IrqscopeRender
import Synchronization

/// The one-way flow, wired: kernel records are decoded and applied to the model as they
/// arrive; a scrape reads the kernel counters, updates the model and renders it.
final class Collector: Sendable {
    let session: KernelSession
    private let model = Mutex(HostModel())
    private let build: HostMetrics.Build

    init(session: KernelSession) {
        self.session = session
        self.build = .init(version: BuildInfo.version, libbpf: KernelSession.libbpfVersion, kernel: session.kernelRelease)
    }

    func start() throws {
        do {
            try session.startEvents { [self] record in
                do {
                    let event = try Event(record: record)
                    model.withLock { $0.apply(event) }
                } catch {
                    model.withLock { $0.noteUndecodable() }
                }
            }
        } catch {
            throw FatalError(message: error.message)
        }
    }

    /// One scrape. Serialised on the model lock: two snapshots applied out of order would
    /// look like a counter reset.
    func scrape(format: ExpositionFormat) throws -> String {
        let start = ContinuousClock.now
        return try model.withLock { model in
            let snapshot = try session.readDelivery()
            model.update(snapshot, irqs: SysfsIRQs.read())
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return render(HostMetrics.families(model, report: session.report, build: build, scrapeSeconds: seconds),
                          format: format)
        }
    }
}
