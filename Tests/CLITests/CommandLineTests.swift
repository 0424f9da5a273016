import Foundation
import IrqscopeDecode
import IrqscopeHost
import Testing
import TestSupport

/// Flags that used to be accepted and then misbehave (issue 14): refused before anything is
/// attached, in one line, with the usage exit status. Runs the built binary; no BPF involved.
@Suite struct CommandLineTests {
    static var binary: String { irqscopeBinary }

    @Test(arguments: [
        (["trace", "--duration", "nan"], "--duration must be a positive number"),
        (["trace", "--duration", "-1"], "--duration must be a positive number"),
        (["trace", "--duration", "inf"], "--duration must be a positive number"),
        (["serve", "--web.telemetry-path", "/healthz"], "would hide another page"),
        (["serve", "--web.telemetry-path", "/"], "would hide another page"),
        (["serve", "--attach", ""], "--attach: no mechanism given"),
        (["doctor", "--attach", ","], "--attach: no mechanism given"),
        (["serve", "--capabilities.keep", ""], "empty capability list"),
        (["serve", "--web.read-timeout", "0s"], "not a positive duration"),
        (["serve", "--web.idle-timeout", "5"], "not a positive duration"),
        (["serve", "--web.max-connections", "0"], "at least 1"),
        (["serve", "--run-as", "nobody"], "--run-as"),
        (["serve", "--collector.irq.name-include", "nvme(", ], "--collector.irq.name-include: not a regular expression"),
        (["serve", "--collector.irq.name-include", "a", "--collector.irq.name-exclude", "b"], "exclude each other"),
        (["serve", "--collector.irq.device-exclude", "[0-9"], "--collector.irq.device-exclude: not a regular expression"),
        (["serve", "--bpf.max-irq-slots", "1000"], "--bpf.max-irq-slots must be a power of two from 32 to 32768"),
        (["doctor", "--bpf.max-irq-slots", "16"], "--bpf.max-irq-slots must be a power of two from 32 to 32768"),
        (["trace", "--bpf.max-irq-slots", "65536"], "--bpf.max-irq-slots must be a power of two from 32 to 32768"),
        (["serve", "--bpf.max-irq-slots", "many"], "--bpf.max-irq-slots"),
    ])
    func refused(args: [String], mentions: String) throws {
        let r = try run([Self.binary] + args, timeout: 30)
        #expect(r.status == 64, "\(args): status \(r.status)")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(mentions), "\(args): \(r.stderr)")
    }
}

/// `--record FILE` runs as root: it must not write through a planted symlink, into a device, or
/// into a file another irqscope is recording to.
@Suite struct RecordingWriterTests {
    let dir = NSTemporaryDirectory() + "irqscope-record-\(UUID().uuidString)"

    @Test func refusesSymlinksDevicesAndASecondWriter() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = dir + "/victim", link = dir + "/link.rec"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
        #expect(throws: RecordingError.self) { _ = try RecordingWriter(path: link) }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me", "written through the link")
        #expect(throws: RecordingError.self) { _ = try RecordingWriter(path: "/dev/null") }

        let first = try RecordingWriter(path: dir + "/a.rec")
        do {
            _ = try RecordingWriter(path: dir + "/a.rec")
            Issue.record("a second writer on the same file was accepted")
        } catch {
            #expect(error.description.contains("another process is recording to it"))
        }
        first.write(.meta(kernel: "k", irqscope: "v"))
        first.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/a.rec")))
        #expect(try Recording.read(bytes) == [.annotation(.meta(kernel: "k", irqscope: "v")), .annotation(.end)],
                "the first writer's recording was damaged")
    }
}
