import Foundation
import Testing
import TestSupport

extension Host {
    @Suite struct Trace {
        /// Live: the test moves a NIC irq to another CPU while tracing; the vector move the kernel
        /// makes (irq_vectors:vector_config with that irq) is in the JSON stream.
        @Test func seesAVectorMoveAsItHappens() throws {
            let movable = try movableIrqs()
            try #require(!movable.isEmpty, "needs a movable irq")
            let irq = movable[0]
            let original = try affinity(irq)
            defer { try? original.write(toFile: "/proc/irq/\(irq)/smp_affinity_list", atomically: false, encoding: .utf8) }
            let trace = try Running([HostEnv.binary, "trace", "--json", "--duration", "6"])
            usleep(1_500_000)
            let target = cpuList(try String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8))
                .first { $0 != (try? effectiveCPU(irq)) }!
            try moveAndWait(irq, to: target)
            let r = trace.wait(timeout: 30)
            #expect(r.status == 0, "\(r.stderr)")
            let objects = try r.stdout.split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
            }
            #expect(objects.last?["summary"] != nil, "no summary")
            #expect(objects.contains { $0["event"] as? String == "vector_config" && $0["irq"] as? Int == irq
                && $0["cpu_target"] as? Int == target }, "no vector_config for irq \(irq) to CPU \(target)")
            // what could not attach is said up front, with its cost
            #expect(r.stderr.contains("not attached:"))
        }

        @Test func followsACommandUntilItExits() throws {
            let start = Date()
            let r = try run([HostEnv.binary, "trace", "--", "/bin/sh", "-c", "sleep 1; exit 3"], timeout: 60)
            #expect(r.status == 0)
            #expect(Date().timeIntervalSince(start) < 20)
            #expect(r.stderr.contains("/bin/sh exited with status 3"), "\(r.stderr)")
            #expect(r.stdout.contains("Summary over"))
        }

        @Test func recordsWhatReplayRenders() throws {
            let file = NSTemporaryDirectory() + "irqscope-\(UUID().uuidString).rec"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let t = try run([HostEnv.binary, "trace", "--duration", "1", "--record", file], timeout: 60)
            #expect(t.status == 0, "\(t.stderr)")
            let r = try run([HostEnv.binary, "replay", file])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("Verdict:"))
        }

        /// SIGKILL leaves no end mark and perhaps a cut record: replay still renders what was
        /// flushed (the writer flushes each second), says where it stopped, and the kernel keeps
        /// none of the programs.
        @Test func aKilledTracesRecordingReplaysWhatItHad() throws {
            let movable = try movableIrqs()
            try #require(!movable.isEmpty, "needs a movable irq")
            let irq = movable[0]
            let original = try affinity(irq)
            defer { try? original.write(toFile: "/proc/irq/\(irq)/smp_affinity_list", atomically: false, encoding: .utf8) }
            let programs = try HostEnv.bpfProgramIDs()
            let file = NSTemporaryDirectory() + "irqscope-\(UUID().uuidString).rec"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let trace = try Running([HostEnv.binary, "trace", "--json", "--duration", "60", "--record", file])
            usleep(1_500_000)
            let target = cpuList(try String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8))
                .first { $0 != (try? effectiveCPU(irq)) }!
            try moveAndWait(irq, to: target)
            // the move is in trace's output, so it is in the writer's buffer: a second for the flush
            #expect(HostEnv.eventually(10) { trace.stdoutSoFar.contains("\"irq\":\(irq)") && trace.stdoutSoFar.contains("vector_config") })
            usleep(2_200_000)
            _ = trace.stop(signal: SIGKILL)
            let r = try run([HostEnv.binary, "replay", "--json", file])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1
                    && (r.stderr.contains("no end mark") || r.stderr.contains("truncated record")), "\(r.stderr)")
            let objects = try r.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
            #expect(objects.contains { $0["event"] as? String == "vector_config" && $0["irq"] as? Int == irq && $0["cpu_target"] as? Int == target },
                    "the move of irq \(irq) to CPU \(target) is not in the killed trace's recording")
            #expect(try HostEnv.eventually { try HostEnv.bpfProgramIDs() == programs }, "programs left behind")
        }

        @Test(arguments: [
            (["trace", "--", "no-such-command-anywhere"], "command not found: no-such-command-anywhere"),
            (["trace", "--device", "0000:99:00.0"], "no PCI device 0000:99:00.0"),
            (["trace", "--guest", "nosuchguest"], "no running guest named 'nosuchguest'"),
            (["trace", "--pid", "4000000"], "no process 4000000"),
            (["trace", "--fail-on", "sometimes"], "sometimes"),
            (["trace", "--duration", "-1"], "--duration"),
        ])
        func badTargetsAreOneLineAndNonZero(args: [String], mentions: String) throws {
            let programs = try HostEnv.bpfProgramIDs()
            let r = try run([HostEnv.binary] + args, timeout: 30)
            #expect(r.status != 0)
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(mentions), "stderr: \(r.stderr)")
            #expect(try HostEnv.eventually { try HostEnv.bpfProgramIDs() == programs }, "programs left behind")
        }
    }
}
