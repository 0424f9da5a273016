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
        var model = HostModel()
        var lifecycles = Lifecycles()
        var first: UInt64 = 0
        for case .event(let e) in entries { first = e.timeNs; break }
        var last = first
        var seenDevices = Set<String>(), seenGuests = Set<String>()
        var counted: [Int: UInt64] = [:]
        var follows: (@Sendable (UInt32) -> Bool)?
        if let pid = trace.pid { follows = { $0 == pid } }
        let output = TraceOutput(options: trace, start: first, color: false, follows: follows)
        for entry in entries {
            switch entry {
            case .annotation(let a):
                // a VMM's exit drops its devices from the metrics; the summary still wants them
                if a["type"] == "exit" && !metrics { continue }
                model.apply(annotation: a)
                if a["type"] == "delivery" {
                    // as trace saw it live: the irqs whose count went up since the previous look
                    let irqs = DeliverySnapshot(annotation: a).irqs
                    if let at = a["at"].flatMap(UInt64.init) {
                        for (irq, c) in irqs where c.interrupts > (counted[irq] ?? 0) { lifecycles.firstInterrupt(irq: irq, at: at) }
                    }
                    counted = irqs.mapValues(\.interrupts)
                }
            case .event(let e):
                let device = model.device(of: e)
                let named = model.guestName(of: e)
                model.apply(e)
                last = e.timeNs
                lifecycles.apply(e, device: device)
                let guest = named ?? model.guestName(of: e)
                if let device { seenDevices.insert(device) }
                if let guest { seenGuests.insert(guest) }
                if !metrics { output.show(e, guest: guest, device: device, model: model) }
            }
        }
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
        let code = output.finish(model: model, lifecycles: lifecycles, seconds: Double(last &- first) / 1e9)
        if code != 0 { throw ExitCode(code) }
    }
}
