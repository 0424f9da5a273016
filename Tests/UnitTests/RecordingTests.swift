import Foundation
import Glibc
import IrqscopeABI
import IrqscopeDecode
import IrqscopeHost
import Testing
import TestSupport

/// The recording format: every record kind written and read back; a writer that is killed or
/// cut short still replays up to its last whole record; reading streams.
@Suite struct RecordingTests {
    static let nic = "0000:00:06.0"
    static let annotations: [Annotation] = [
        .meta(kernel: "6.12.48+deb13-amd64", irqscope: "0.1.0"),
        .process(ProcessIdentity(tgid: 4242, name: "alpha", source: .qemuName)),
        .process(ProcessIdentity(tgid: 7, name: "ns/vm=1", source: .kubevirt)),
        .device(address: nic, driver: "vfio-pci", intx: 11),
        .device(address: "0000:00:07.0", driver: nil, intx: nil),
        .device(address: nic, driver: "vfio-pci", intx: 11, lineActions: ""),
        .device(address: nic, driver: "vfio-pci", intx: 11, lineActions: "ahci,e1000e"),
        .delivery(.init(snapshot: DeliverySnapshot(irqs: [34: IRQCount(interrupts: 5, unhandled: 1), 0: IRQCount(interrupts: 0, unhandled: 0)],
                                                   spurious: [0xef: 3], untracked: 2, eventsDropped: 1, kretprobesMissed: 9),
                        live: [0, 34, 35], at: 123_456_789)),
        .delivery(.init(snapshot: DeliverySnapshot(), live: [])),
        .exit(tgid: 4242),
        .scrape(seq: 3),
    ]

    func tempFile() -> String { NSTemporaryDirectory() + "irqscope-rec-\(UUID().uuidString).rec" }

    func readAll(_ path: String) throws -> (entries: [Recording.Entry], incomplete: String?) {
        var reader = try RecordingReader(path: path)
        defer { reader.close() }
        var entries: [Recording.Entry] = []
        while let e = try reader.next() { entries.append(e) }
        return (entries, reader.incomplete)
    }

    @Test func everyRecordKindReadsBackAsWritten() throws {
        let path = tempFile()
        defer { unlink(path) }
        let writer = try RecordingWriter(path: path)
        let raw = rawEvent(IRQSCOPE_EV_VECTOR_CONFIG, irq: 34, at: 99) { $0.u.vector.vector = 0x28 }
        for a in Self.annotations { writer.write(a) }
        writer.write(event: raw)
        writer.close()
        let (entries, incomplete) = try readAll(path)
        let event = try raw.withUnsafeBytes { try Event(record: $0) }
        #expect(entries == Self.annotations.map { .annotation($0) } + [.event(event), .annotation(.end)])
        #expect(incomplete == nil, "\(incomplete ?? "")")
    }

    /// What SIGKILL leaves: whatever was flushed, and no end mark. Cut inside the last record as
    /// well (a copy cut short, a full disk), it still reads up to that record and says where.
    @Test func aKilledWritersRecordingReadsToItsLastWholeRecord() throws {
        let path = tempFile()
        defer { unlink(path) }
        let writer = try RecordingWriter(path: path)
        for a in Self.annotations { writer.write(a) }
        writer.flush()
        let (entries, incomplete) = try readAll(path)
        #expect(entries == Self.annotations.map { .annotation($0) })
        #expect(incomplete?.contains("no end mark after its \(Self.annotations.count) records") == true, "\(incomplete ?? "nil")")

        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(truncate(path, off_t(size - 3)) == 0)
        let (cut, why) = try readAll(path)
        #expect(cut == Self.annotations.dropLast().map { .annotation($0) })
        let lastRecordAt = size - 8 - Annotation.scrape(seq: 3).fields.map { "\($0.0)=\($0.1)" }.joined(separator: "\n").utf8.count
        #expect(why?.contains("truncated record at byte \(lastRecordAt)") == true
                && why?.contains("the \(Self.annotations.count - 1) whole records before it") == true, "\(why ?? "nil")")
        writer.close()
    }

    @Test func damagedAnnotationsAreRefusedWhereTheyAre() throws {
        for text in ["type=process\ntgid=x\nname=a\nsource=comm", "type=process\ntgid=1\nname=a\nsource=guess",
                     "type=delivery\nirqs=1:2", "type=delivery\nlive=-3", "type=exit", "type=warp", "no equals sign"] {
            var bytes = Recording.header
            bytes += withUnsafeBytes(of: UInt32(2).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian) { Array($0) }
            bytes += Array(text.utf8)
            #expect(throws: RecordingError.self, "\(text)") { try Recording.read(bytes) }
            do { _ = try Recording.read(bytes) } catch { #expect(error.description.hasPrefix("record at byte 20: "), "\(error)") }
        }
    }
}
