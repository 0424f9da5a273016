import Foundation
import Glibc
import IrqscopeABI
import IrqscopeDecode
import IrqscopeHost
import Testing
import TestSupport

extension Host {
    /// A recording whose disk fills: the writer says where it stopped and leaves only whole
    /// records, so the recording replays to there. Root: it mounts a small tmpfs.
    @Suite struct RecordingFailure {
        @Test func aFullDiskLeavesWholeRecordsAndSaysWhere() throws {
            let dir = NSTemporaryDirectory() + "irqscope-full-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { _ = try? run(["umount", dir]); try? FileManager.default.removeItem(atPath: dir) }
            let mounted = try run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", dir])
            try #require(mounted.status == 0, "mount: \(mounted.stderr)")

            let record = rawEvent(IRQSCOPE_EV_VECTOR_CONFIG, irq: 30)
            let writer = try RecordingWriter(path: dir + "/full.rec")
            for _ in 0..<20 { writer.write(event: record) }
            writer.flush()
            #expect(writer.failure == nil, "\(writer.failure?.description ?? "")")
            let whole = 20 + 20 * (8 + record.count)
            for _ in 0..<1000 { writer.write(event: record) }
            writer.close()
            let failure = try #require(writer.failure, "16 KiB took 150 KiB of records")
            #expect(failure.description.contains("cannot write the recording at byte \(whole)")
                    && failure.description.contains("No space left on device"), "\(failure)")
            let size = try FileManager.default.attributesOfItem(atPath: dir + "/full.rec")[.size] as! Int
            #expect(size == whole, "cut back to the last whole flush: \(size) bytes, \(whole) expected")
            var reader = try RecordingReader(path: dir + "/full.rec")
            defer { reader.close() }
            var events = 0
            while let entry = try reader.next() { if case .event = entry { events += 1 } }
            #expect(events == 20)
            #expect(reader.incomplete?.contains("no end mark") == true, "\(reader.incomplete ?? "nil")")
        }
    }
}
