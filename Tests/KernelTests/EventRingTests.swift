@testable import IrqscopeKernel
import Testing

/// The ring reader against records laid out the way kernel/bpf/ringbuf.c writes them, and its
/// window arithmetic against the ring's mapping (consumer page, producer page, data twice).
@Suite struct EventRingTests {
    /// Records as the kernel writes them, from position `start` on, in a linear view.
    struct Records {
        var bytes: [UInt8] = []
        let start: UInt64
        var end: UInt64 { start + UInt64(bytes.count) }

        mutating func write(_ payload: [UInt8], discard: Bool = false, busy: Bool = false) {
            var word = UInt32(payload.count)
            if discard { word |= 1 << 30 }
            if busy { word |= 1 << 31 }
            for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: word >> (8 * i))) }
            bytes += [0, 0, 0, 0] + payload
            while bytes.count % 8 != 0 { bytes.append(0xee) }
        }
    }

    func read(_ r: Records) -> (records: [[UInt8]], busy: Bool, consumer: UInt64) {
        var got: [[UInt8]] = []
        var consumer = r.start
        let result = r.bytes.withUnsafeBytes { raw in
            withUnsafeMutableBytes(of: &consumer) { c in
                EventRing.records(raw.baseAddress!, from: r.start, to: r.end, consumer: c.baseAddress!) { got.append(Array($0)) }
            }
        }
        #expect(result.count == got.count)
        return (got, result.busy, consumer)
    }

    @Test func everyCommittedRecordInOrderAndTheSpaceGivenBack() {
        var r = Records(start: 4096 * 7 + 40)
        let payloads: [[UInt8]] = [Array(0..<50), Array(100..<200), Array(7..<10), Array(0..<136)]
        for p in payloads { r.write(p) }
        let got = read(r)
        #expect(got.records == payloads && !got.busy && got.consumer == r.end)
    }

    @Test func discardedRecordsAreSkippedAndABusyOneWaits() {
        var r = Records(start: 64)
        r.write([1, 2, 3])
        r.write([4, 5, 6, 7, 8, 9, 10, 11, 12], discard: true)
        r.write([13])
        let busyAt = r.end
        r.write([14, 15], busy: true)
        r.write([16])
        let got = read(r)
        #expect(got.records == [[1, 2, 3], [13]] && got.busy && got.consumer == busyAt)
    }

    /// (position, end, size): a window inside the data area, one wrapping its end, a full ring.
    static let windows: [(UInt64, UInt64, Int)] = [
        (4096 * 3 + 100, 4096 * 3 + 400, 16384),
        (16384 * 5 + 16000, 16384 * 5 + 16900, 16384),
        (16384 * 2 + 8, 16384 * 3 + 8, 16384),
        (4088, 4088 + 4096, 4096),
    ]

    @Test(arguments: windows)
    func windowsCoverTheRecordsAndStayInTheMapping(position: UInt64, end: UInt64, size: Int) {
        let page = 4096
        let w = EventRing.window(from: position, to: end, size: size, page: page)
        #expect(w.offset % page == 0 && w.length % page == 0)
        // behind the consumer and producer pages, and where the kernel put the first record
        #expect(w.offset - 2 * page + w.skip == Int(position % UInt64(size)))
        // every byte up to `end`, and nothing past the data area's second copy
        #expect(w.skip + Int(end - position) <= w.length)
        #expect(w.offset + w.length <= 2 * page + 2 * size)
        #expect(w.length - (w.skip + Int(end - position)) < page)
    }
}
