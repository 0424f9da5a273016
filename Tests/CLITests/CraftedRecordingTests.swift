import Foundation
import IrqscopeABI
import IrqscopeDecode
import Testing
import TestSupport

/// Recordings nobody's kernel wrote (issue 14): `irqscope replay` ends with one line and exit 1, or
/// renders, within a bounded time. Before, each of these trapped (SIGILL) or grew without bound.
@Suite struct CraftedRecordingTests {
    static let binary = irqscopeBinary

    static func event(_ type: irqscope_event_type, result: Int64 = 0, irq: Int32 = -1, device: String = "",
                      _ setup: (inout irqscope_event) -> Void = { _ in }) -> [UInt8] {
        rawEvent(type, irq: irq, result: result, device: device, setup)
    }

    static func recording(_ records: [(kind: UInt32, payload: [UInt8])]) -> [UInt8] {
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var out = Recording.header
        for r in records { out += u32(r.kind) + u32(UInt32(r.payload.count)) + r.payload }
        return out
    }

    static func annotation(_ text: String) -> (kind: UInt32, payload: [UInt8]) { (2, Array(text.utf8)) }
    static func ev(_ bytes: [UInt8]) -> (kind: UInt32, payload: [UInt8]) { (1, bytes) }

    static let device = "0000:00:03.0"
    static let cases: [(String, [UInt8])] = [
        ("the 50-byte reproducer: an irq twice in live=", Array("IRQSCOPE-RECORD\u{0}\u{1}\u{0}\u{0}\u{0}\u{2}\u{0}\u{0}\u{0}\u{16}\u{0}\u{0}\u{0}type=delivery\nlive=1,1".utf8)),
        ("request_irq failing with Int64.min", recording([ev(event(IRQSCOPE_EV_REQUEST_IRQ, result: .min, irq: 30, device: device))])),
        ("msix_enable failing with Int64.min", recording([ev(event(IRQSCOPE_EV_MSIX_ENABLE, result: .min, device: device))])),
        ("msix_add failing with Int64.min", recording([ev(event(IRQSCOPE_EV_MSIX_ADD, result: .min, device: device))])),
        ("vector_alloc failing with Int64.min", recording([ev(event(IRQSCOPE_EV_VECTOR_ALLOC, result: .min, irq: 30))])),
        ("vector_reserve failing with Int64.min", recording([ev(event(IRQSCOPE_EV_VECTOR_RESERVE, result: .min, irq: 30))])),
        ("an irq number beyond Int in a snapshot", recording([annotation("type=delivery\nirqs=18446744073709551615:1:0\nspurious=18446744073709551615:3")])),
        ("a counter past 2^64 across snapshots", recording([
            annotation("type=delivery\nirqs=5:18446744073709551615:0\nlive=5"), annotation("type=delivery\nirqs=5:1:0\nlive=5")])),
        ("an msi index that wraps", recording([ev(event(IRQSCOPE_EV_IRQ_ALLOC, irq: 30, device: device) {
            $0.u.irq_range.nr_irqs = 3; $0.u.irq_range.msi_index = UInt32.max - 1 })])),
        ("unhandled counts past 2^64", recording([
            annotation("type=device\naddress=\(device)\nintx=11"),
            ev(event(IRQSCOPE_EV_VFIO_SET_IRQS, device: device) { $0.u.vfio.index = 2 }),
            ev(event(IRQSCOPE_EV_REQUEST_IRQ, irq: 40, device: device) { e in
                withUnsafeMutableBytes(of: &e.u.irq_request.name) { d in for (i, c) in "vfio-msix[0](\(device))".utf8.enumerated() { d[i] = c } } }),
            ev(event(IRQSCOPE_EV_MSIX_ENABLE, result: 1, device: device)),
            ev(event(IRQSCOPE_EV_MSIX_DISABLE, device: device)),
            ev(event(IRQSCOPE_EV_UNHANDLED, irq: 11) { $0.u.unhandled.count = .max }),
            ev(event(IRQSCOPE_EV_UNHANDLED, irq: 11) { $0.u.unhandled.count = .max })])),
    ]

    func replay(_ bytes: [UInt8], _ extra: [String]) throws -> Finished {
        let file = NSTemporaryDirectory() + "irqscope-crafted-\(UUID().uuidString).rec"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try run([Self.binary, "replay", file] + extra, timeout: 10)
    }

    @Test(arguments: cases.map(\.0))
    func rendersOrFailsInOneLine(name: String) throws {
        let bytes = Self.cases.first { $0.0 == name }!.1
        for extra in [[], ["--json"], ["--metrics"]] {
            let r = try replay(bytes, extra)
            // a trap ends with a signal (status 132 through the shell, or uncaught here)
            #expect(r.status == 0 || (r.status == 1 && r.stderr.split(separator: "\n").count == 1),
                    "\(name) \(extra): status \(r.status), stderr \(r.stderr.prefix(300))")
        }
    }

    /// One irq_alloc event claiming 2^32-1 irqs made the model walk (and store) every one of them.
    @Test func aHugeIrqRangeIsRefused() throws {
        let bytes = Self.recording([Self.ev(Self.event(IRQSCOPE_EV_IRQ_ALLOC, irq: 30, device: Self.device) { $0.u.irq_range.nr_irqs = .max })])
        let r = try replay(bytes, [])
        #expect(r.status == 1)
        #expect(r.stderr.contains("at most 2048") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    /// The magic is checked on the first bytes, not after reading the whole stream.
    @Test func anEndlessStreamFailsAtOnce() throws {
        let r = try run([Self.binary, "replay", "/dev/zero"], timeout: 10)
        #expect(r.status == 1 && r.stderr.contains("not an irqscope recording"), "\(r.status) \(r.stderr)")
    }

    /// A record claiming gigabytes is refused before it is buffered.
    @Test func aHugeRecordLengthIsRefused() throws {
        var bytes = Self.recording([])
        bytes += [2, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]
        #expect(throws: RecordingError.self) { try Recording.read(bytes) }
        #expect((try? Recording.read(Self.recording([]))) == [], "an empty recording is fine")
    }

    /// The stream decoder gives the same entries however the bytes are split.
    @Test func decodingDoesNotDependOnReadBoundaries() throws {
        let bytes = Self.cases[9].1
        let whole = try Recording.read(bytes)
        for cut in [0, 1, 17, 20, 27, 28, 100, bytes.count - 1] {
            var parser = Recording.Parser()
            let pieces = try parser.feed(bytes[..<cut]) + parser.feed(bytes[cut...])
            #expect(pieces == whole && parser.truncation == nil, "cut at \(cut)")
        }
    }
}
