import Foundation
import LabChecks
import Testing
import TestSupport

/// `irqscope replay` on the lab's recordings: the human rendering against golden files, and bad
/// input. Runs the built binary; no BPF involved. IRQSCOPE_UPDATE_GOLDEN=1 rewrites the goldens.
@Suite struct ReplayTests {
    static var binary: String { irqscopeBinary }
    static let golden = packageRoot + "/Tests/Fixtures/golden"

    func replay(_ args: [String]) throws -> Finished {
        try run([Self.binary, "replay"] + args, timeout: 60)
    }

    /// The lab VMM's guest on two kernels (alone, beside a second guest, and on a line no
    /// handler holds), and Debian's QEMU booting a real guest (its trace's own recording) on 6.12
    /// with both QEMU generations.
    @Test(arguments: [("6.1/main", "vfio", "alpha"), ("6.12/main", "vfio", "alpha"),
                      ("6.1/guests", "guests", "alpha"), ("6.1/guests", "unshared", "alpha"),
                      ("6.12/realvmm-qemu7.2", "realvmm.trace", "inner"), ("6.12/realvmm-qemu10", "realvmm.trace", "inner")])
    func guestRendersAsRecorded(boot: String, recording: String, guest: String) throws {
        let dir = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/\(boot)")
        let r = try replay([dir + "/\(recording).rec", "--guest", guest])
        #expect(r.status == 0, "\(r.stderr)")
        let file = "\(Self.golden)/replay-\(boot.replacingOccurrences(of: "/main", with: "").replacingOccurrences(of: "/", with: "-"))-\(recording.split(separator: ".").first!)-\(guest).txt"
        if ProcessInfo.processInfo.environment["IRQSCOPE_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: Self.golden, withIntermediateDirectories: true)
            try r.stdout.write(toFile: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: file, encoding: .utf8)
        let got = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let firstDifference = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(got.count == want.count && firstDifference == nil,
                "differs from \(file) at line \((firstDifference?.offset ?? min(got.count, want.count)) + 1): \(firstDifference.map { "got '\($0.element.0)' want '\($0.element.1)'" } ?? "length \(got.count) vs \(want.count)")")
    }

    @Test func jsonIsOneObjectPerEventThenASummary() throws {
        let dir = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/6.12/main")
        let r = try replay([dir + "/vfio.rec", "--json", "--device", "0000:00:06.0"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count > 20)
        for line in lines.dropLast() {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            for key in ["time_ns", "event", "pid", "comm"] { #expect(o[key] != nil, "\(key) missing: \(line)") }
        }
        let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
        #expect(last?["summary"] != nil)
    }

    @Test(arguments: [
        (["/nonexistent.rec"], "cannot open"),
        (["{BAD}"], "not an irqscope recording"),
        (["{GOOD}", "--guest", "nobody"], "no guest named 'nobody'"),
        (["{GOOD}", "--device", "0000:00:1f.0"], "no device 0000:00:1f.0"),
        (["{GOOD}", "--device", "bogus"], "not a PCI address"),
        (["{GOOD}", "--fail-on", "everything"], "everything"),
    ])
    func badInputIsOneLineAndNonZero(args: [String], mentions: String) throws {
        let dir = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/6.12/main")
        let bad = dir + "/bad.rec"
        try Data("garbage\n".utf8).write(to: URL(fileURLWithPath: bad))
        let good = try ended(dir + "/vfio.rec")
        let resolved = args.map { $0.replacingOccurrences(of: "{BAD}", with: bad).replacingOccurrences(of: "{GOOD}", with: good) }
        let r = try replay(resolved)
        #expect(r.status != 0)
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(mentions), "stderr: \(r.stderr)")
    }

    /// The fixture with the end mark a clean writer leaves (the fixtures predate it), so that
    /// the only complaint is the one under test.
    func ended(_ path: String) throws -> String {
        let text = Array("type=end".utf8)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes += [2, 0, 0, 0, UInt8(text.count), 0, 0, 0] + text
        try Data(bytes).write(to: URL(fileURLWithPath: path + ".ended"))
        return path + ".ended"
    }

    /// A recording cut inside a record (a killed writer, a copy cut short) replays every whole
    /// event before the cut, and says where it stopped: counted here from the record headers.
    @Test func aCutRecordingReplaysUpToTheCut() throws {
        let dir = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/6.12/main")
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/vfio.rec")))
        var at = 20, events = 0, recordStart = 0
        let cut = 5000
        while at + 8 <= cut {
            let kind = whole[at], length = Int(whole[at + 4]) | Int(whole[at + 5]) << 8 | Int(whole[at + 6]) << 16
            if at + 8 + length > cut { recordStart = at; break }
            if kind == 1 { events += 1 }
            at += 8 + length
        }
        #expect(recordStart > 0, "the cut falls between records")
        let truncated = dir + "/truncated.rec"
        try Data(whole.prefix(cut)).write(to: URL(fileURLWithPath: truncated))
        let r = try replay([truncated, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == events + 1, "\(events) events and a summary")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("truncated record at byte \(recordStart)"), "\(r.stderr)")
    }

    @Test func failOnLossyGatesA61Resize() throws {
        let dir = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/6.1/main")
        #expect(try replay([dir + "/vfio.rec", "--fail-on", "lossy"]).status == 3)
        #expect(try replay([dir + "/vfio.rec", "--fail-on", "failure"]).status == 0)
        let ok = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/6.12/main")
        #expect(try replay([ok + "/vfio.rec", "--fail-on", "lossy", "--fail-on", "lost"]).status == 0)
        let exhausted = try LabChecks.unpack(packageRoot + "/Tests/Fixtures/lab/6.12/exhaustion")
        #expect(try replay([exhausted + "/exhaustion.rec", "--fail-on", "failure"]).status == 4)
    }
}
