import ArgumentParser
import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a recording made with 'trace --record' or 'serve --record', on any machine, without BPF.",
        discussion: "Takes trace's flags; exit status as for trace.")

    @Argument(help: "The recording.")
    var file: String

    @OptionGroup var trace: TraceOptions

    @Flag(help: "Print the device and guest metrics the recording leads to, instead of the events.")
    var metrics = false

    func run() throws {
        let entries: [Recording.Entry]
        do { entries = try Recording.read(path: file) } catch { throw FatalError(message: "\(file): \(error)") }
        var player = RecordingPlayer(keepExited: !metrics)
        var first: UInt64 = 0
        for case .event(let e) in entries { first = e.timeNs; break }
        var last = first
        var seenDevices = Set<String>(), seenGuests = Set<String>()
        var follows: (@Sendable (UInt32) -> Bool)?
        if let pid = trace.pid { follows = { $0 == pid } }
        let output = TraceOutput(options: trace, start: first, color: false, follows: follows)
        for entry in entries {
            guard let step = player.play(entry) else { continue }
            last = step.event.timeNs
            if let device = step.device { seenDevices.insert(device) }
            if let guest = step.guest { seenGuests.insert(guest) }
            if !metrics { output.show(step.event, guest: step.guest, device: step.device, model: player.model) }
        }
        let model = player.model
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
        let code = output.finish(model: model, lifecycles: player.lifecycles, seconds: Double(last &- first) / 1e9)
        if code != 0 { throw ExitCode(code) }
    }
}
