import Foundation
import Synchronization
import Testing
import TestSupport

extension Host {
    /// SIGTERM or SIGINT at any moment of serve's life, from start-up (binding, loading BPF) to
    /// serving under scrapes: exit 0, a recording that replays whole, and nothing left attached.
    @Suite struct Signals {
        @Test func aSignalAtAnyMomentEndsCleanly() throws {
            let before = try HostEnv.irqscopeBPF()
            // how long start-up takes here, so that the signals land all over it and after
            let started = Date()
            let (probe, _) = try HostEnv.serve()
            let startup = Date().timeIntervalSince(started)
            #expect(probe.stop().status == 0)
            var generator = SystemRandomNumberGenerator()
            for i in 0..<16 {
                let port = freePort()
                let file = NSTemporaryDirectory() + "irqscope-signal-\(UUID().uuidString).rec"
                defer { try? FileManager.default.removeItem(atPath: file) }
                let serve = try Running([HostEnv.binary, "serve", "--web.listen-address=127.0.0.1:\(port)", "--record", file])
                // from 20 ms (before that the Swift runtime is not yet running irqscope's main) to
                // past the end of start-up; every other run under scrapes
                let delay = Double.random(in: 0.02...(startup * 1.5 + 0.1), using: &generator)
                let scraping = Atomic<Bool>(i % 2 == 1)
                if i % 2 == 1 {
                    DispatchQueue.global().async {
                        while scraping.load(ordering: .relaxed) { _ = try? httpGet("http://127.0.0.1:\(port)/metrics") }
                    }
                }
                usleep(UInt32(delay * 1e6))
                let signal = i % 4 < 2 ? SIGTERM : SIGINT
                let r = serve.stop(signal: signal, timeout: 20)
                scraping.store(false, ordering: .relaxed)
                #expect(r.status == 0 && serve.process.terminationReason == .exit,
                        "signal \(signal) \(Int(delay * 1000)) ms after start (start-up \(Int(startup * 1000)) ms): status \(r.status), \(r.stderr.suffix(300))")
                if FileManager.default.fileExists(atPath: file) {
                    let replay = try run([HostEnv.binary, "replay", "--metrics", file])
                    #expect(replay.status == 0 && replay.stderr.isEmpty, "recording after signal \(signal) at \(Int(delay * 1000)) ms: \(replay.stderr)")
                }
            }
            // irqscope's own, and only what these runs added: the host's other BPF users come and
            // go, and an exporter of the previous test may still be detaching when `before` is
            // taken (CI: "left behind: [], links []", its programs gone by the end)
            var after = try HostEnv.irqscopeBPF()
            #expect(try HostEnv.eventually {
                after = try HostEnv.irqscopeBPF()
                return Set(after.programs.keys).isSubset(of: before.programs.keys) && after.links.isSubset(of: before.links)
            },
                    "irqscope's programs or links left behind: \(after.programs.filter { before.programs[$0.key] == nil }.values.sorted()), links \(after.links.subtracting(before.links).sorted())")
        }
    }
}
