// libFuzzer target: every input goes through the recording decoder and replay's model and
// rendering (what `irqscope replay` runs), and through the web config parser. Built and run by
// Tests/Fuzz/fuzz.sh (`make fuzz`), with the sources of those modules compiled for coverage.
import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender
import IrqscopeServer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    replay(bytes)
    _ = try? WebConfigFile.parse(String(decoding: bytes, as: UTF8.self), path: "/fuzz/web.yml")
    return 0
}

func replay(_ bytes: [UInt8]) {
    let whole: [Recording.Entry]
    do { whole = try Recording.read(bytes) } catch { return }
    // the stream decoder must not depend on where reads end
    var parser = Recording.Parser()
    let cut = bytes.count / 3
    let pieces = (try? parser.feed(bytes[..<cut])).flatMap { a in (try? parser.feed(bytes[cut...])).map { a + $0 } }
    precondition(parser.truncation == nil, "a whole recording decoded in two pieces ends in a partial record")
    precondition(pieces == whole, "decoding in two pieces differs from decoding at once")

    for keepExited in [true, false] {
        var player = Pipeline(lifecycles: true, keepExited: keepExited)
        var start: UInt64 = 0
        for case .event(let e) in whole { start = e.timeNs; break }
        let format = TraceFormat(start: start, color: false)
        var last = start
        for entry in whole {
            guard let step = player.play(entry) else { continue }
            last = step.event.timeNs
            _ = format.line(step.event, guest: step.guest, device: step.device)
            _ = EventJSON.object(step.event, guest: step.guest, startNs: start).text
        }
        let families = HostMetrics.deviceFamilies(player.model)
        _ = render(families, format: .prometheusText)
        _ = render(families, format: .openMetrics)
        let summary = TraceSummary(model: player.model, lifecycles: player.lifecycles ?? Lifecycles(), include: { _ in true },
                                   seconds: Double(last &- start) / 1e9)
        _ = summary.text(format)
        _ = summary.json().text
        _ = summary.findings
    }
}
