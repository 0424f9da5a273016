import ArgumentParser
import IrqscopeDecode
import IrqscopeHost
import IrqscopeModel
import IrqscopeRender

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Render a recording made with 'trace --record' or 'serve --record', on any machine, without BPF.",
        discussion: """
            Takes trace's flags; exit status as for trace. A recording whose writer was killed replays \
            up to its last whole record, and says where it stopped.
            """)

    @Argument(help: "The recording.")
    var file: String

    @OptionGroup var trace: TraceOptions

    @Flag(help: "Print the device and guest metrics the recording leads to, instead of the events.")
    var metrics = false

    func run() throws {
        // streamed: memory follows the model, not the file
        var reader: RecordingReader
        do { reader = try RecordingReader(path: file) } catch { throw FatalError(message: "\(file): \(error)") }
        defer { reader.close() }
        var pipeline = Pipeline(lifecycles: !metrics, keepExited: !metrics)
        var first: UInt64?, last: UInt64 = 0
        var seenDevices = Set<String>(), seenGuests = Set<String>()
        var follows: (@Sendable (UInt32) -> Bool)?
        if let pid = trace.pid { follows = { $0 == pid } }
        var output: TraceOutput?
        while let entry = try next(&reader) {
            if case .annotation(.vmmStep(let s)) = entry {
                let shown = pipeline.apply(s)
                if !metrics {
                    if output == nil { output = TraceOutput(options: trace, start: s.at, color: false, follows: follows) }
                    output?.show(shown)
                }
                continue
            }
            guard let step = pipeline.play(entry) else { continue }
            last = step.event.timeNs
            if first == nil { first = last }
            if let device = step.device { seenDevices.insert(device) }
            if let guest = step.guest { seenGuests.insert(guest) }
            if !metrics {
                if output == nil { output = TraceOutput(options: trace, start: last, color: false, follows: follows) }
                output?.show(step, model: pipeline.model)
            }
        }
        if let incomplete = reader.incomplete { printError("irqscope: \(file): \(incomplete)") }
        let model = pipeline.model
        if metrics {
            printOut(render(HostMetrics.deviceFamilies(model), format: .prometheusText))
            return
        }
        if let guest = trace.guest, !seenGuests.contains(guest) {
            let known = seenGuests.subtracting(["host"]).sorted()
            throw FatalError(message: "no guest named '\(guest)' in \(file)" + (known.isEmpty ? "" : " (guests: \(known.joined(separator: ", ")))"))
        }
        if let device = trace.device, !seenDevices.contains(device) {
            throw FatalError(message: "no device \(device) in \(file)")
        }
        let start = first ?? 0
        let code = (output ?? TraceOutput(options: trace, start: start, color: false, follows: follows))
            .finish(model: model, lifecycles: pipeline.lifecycles ?? Lifecycles(), unmasks: pipeline.unmasks, seconds: Double(last &- start) / 1e9)
        if code != 0 { throw ExitCode(code) }
    }

    private func next(_ reader: inout RecordingReader) throws -> Recording.Entry? {
        do { return try reader.next() } catch { throw FatalError(message: "\(file): \(error)") }
    }
}
