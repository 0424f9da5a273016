import Foundation
import Glibc
import IrqscopeABI
import IrqscopeDecode
import IrqscopeHost
import Testing
import TestSupport

@Suite struct ReplayMemoryTests {
    func tempFile() -> String { NSTemporaryDirectory() + "irqscope-rec-\(UUID().uuidString).rec" }

    /// Replay streams: a million events cost no more memory than ten thousand.
    @Test func replayMemoryDoesNotGrowWithTheRecording() throws {
        func recording(events: Int) throws -> String {
            let path = tempFile()
            let writer = try RecordingWriter(path: path)
            for i in 0..<events {
                writer.write(event: rawEvent(IRQSCOPE_EV_VECTOR_CONFIG, irq: Int32(24 + i % 8), at: UInt64(1_000 + i)) { $0.u.vector.vector = 0x28 })
            }
            writer.close()
            return path
        }
        let small = try recording(events: 10_000), large = try recording(events: 1_000_000)
        defer { unlink(small); unlink(large) }
        let sizes = try [small, large].map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as! Int }
        var rss: [Int] = []
        for path in [small, large] {
            let r = try runMeasured([irqscopeBinary, "replay", path], stdout: "/dev/null")
            #expect(r.status == 0, "replay \(path): \(r.status)")
            rss.append(r.maxRSSKiB)
        }
        print("replay peak RSS: \(rss[0]) KiB for 10k events (\(sizes[0] >> 10) KiB), \(rss[1]) KiB for 1M events (\(sizes[1] >> 10) KiB)")
        // the file grows by more than 100 MiB; a replay that read it whole would too
        #expect(sizes[1] - sizes[0] > 100 << 20)
        #expect(rss[1] - rss[0] < 16 << 10, "peak RSS \(rss[0]) KiB -> \(rss[1]) KiB")
    }
}
