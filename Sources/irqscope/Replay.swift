import ArgumentParser
import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a recording made with --record, on any machine, without BPF.")

    @Argument(help: "The recording.")
    var file: String

    @Flag(help: "One JSON object per event.")
    var json = false

    @Flag(help: "Print the metrics the recording leads to, in the Prometheus text format.")
    var metrics = false

    func run() throws {
        let entries: [Recording.Entry]
        do { entries = try Recording.read(path: file) } catch { throw FatalError(message: "\(file): \(error)") }
        var model = HostModel()
        var start: UInt64?
        for entry in entries {
            switch entry {
            case .annotation(let a):
                model.apply(annotation: a)
            case .event(let e):
                model.apply(e)
                start = start ?? e.timeNs
                if json {
                    let guest = model.devices.owner(of: e).flatMap { model.processes[$0]?.name }
                    printOut(EventJSON.object(e, guest: guest, startNs: start!).text + "\n")
                }
            }
        }
        if metrics {
            printOut(render(HostMetrics.deviceFamilies(model), format: .prometheusText))
        }
    }
}
