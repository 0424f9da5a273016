import Foundation
import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender
import Testing
import TestSupport

/// trace --qemu-trace: QEMU's trace log lines, their record in a recording, and the guest-unmask
/// -> host-ready pairing.
@Suite struct VMMStepTests {
    static let cells = ["6.12/realvmm-qemu7.2", "6.12/realvmm-qemu10", "7.3/realvmm-qemu10"]

    /// Both QEMU generations' logs as the lab kept them (a copy of what `--qemu-trace` read, so
    /// stamped "TID@SEC.USEC:"): every line is a vfio_ event of the lab's device; do_use lines
    /// name the vector the text says.
    @Test(arguments: cells) func qemuLogLinesParse(cell: String) throws {
        let text = try String(contentsOfFile: "\(packageRoot)/Tests/Fixtures/lab/\(cell)/realvmm.qemu-trace.log", encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(!lines.isEmpty)
        var uses: [Int] = []
        for line in lines {
            let parsed = try #require(QEMUTraceLine(line), "\(line)")
            #expect(parsed.name.hasPrefix("vfio_") && line.contains(":" + parsed.name + " "), "\(line)")
            #expect(parsed.device == "0000:00:05.0", "\(line)")
            #expect(parsed.wallUs != nil && parsed.tid.map { line.hasPrefix("\($0)@") } == true, "\(line)")
            #expect(parsed.text == line.replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespaces)
                    || parsed.text == parsed.name + " " + parsed.args, "\(line)")
            if let v = parsed.vector, parsed.name == "vfio_msix_vector_do_use" { uses.append(v) }
        }
        // counted apart from the parser: "vector N used"
        let expected = lines.filter { $0.contains("vfio_msix_vector_do_use") }.map { line in
            Int(line.components(separatedBy: "vector ").last!.components(separatedBy: " ").first!)!
        }
        #expect(!expected.isEmpty && uses == expected, "parsed \(uses), text \(expected)")
    }

    /// What `-msg timestamp=on` makes of a line, as Debian's QEMU 7.2.22 and 10.0.13 print it
    /// (scripts/tracetool/backend/log.py: "%d@%zu.%06zu:" thread id, gettimeofday).
    @Test func timestampedLines() throws {
        let real = try #require(QEMUTraceLine("29614@1796028864.732610:pci_cfg_write mch 00:00.0 @0x90 <- 0x33333330"))
        #expect(real.tid == 29614 && real.wallUs == 1_796_028_864_732_610 && real.name == "pci_cfg_write")
        #expect(real.args == "mch 00:00.0 @0x90 <- 0x33333330" && real.device == nil)
        let use = try #require(QEMUTraceLine("412@1796028864.000042:vfio_msix_vector_do_use  (0000:00:05.0) vector 3 used"))
        #expect(use.wallUs == 1_796_028_864_000_042 && use.device == "0000:00:05.0" && use.vector == 3)
        #expect(use.text == "412@1796028864.000042:vfio_msix_vector_do_use (0000:00:05.0) vector 3 used")
        #expect(QEMUTraceLine(Substring(use.text)) == use)
        let early = try #require(QEMUTraceLine("vfio_msix_early_setup 0000:00:05.0 PCI MSI-X CAP @0xa0, BAR 3, offset 0x0, entries 5, noresize 0"))
        #expect(early.device == "0000:00:05.0" && early.vector == nil)
        // what else QEMU logs to -D is not a step
        for other in ["qemu-system-x86_64: terminating on signal 15", "", "12@17.5:vfio_x a", "Invalid read at addr 0x0"] {
            let parsed = QEMUTraceLine(Substring(other))
            #expect(parsed == nil || parsed?.wallUs == nil, "\(other)")
        }
        #expect(QEMUTraceLine("12@17.5:vfio_x a") == nil)
    }

    @Test func wallClockToMonotonic() {
        // realtime 1000.000000500 s when monotonic was 10 s: offset 990.0000005 s
        let offset = WallClockOffset(ns: 990_000_000_500)
        #expect(offset.monotonic(wallUs: 1_000_000_001) == 10_000_000_500)
    }

    @Test func recordedStepsRoundTripAndDamagedOnesAreRefused() throws {
        let line = try #require(QEMUTraceLine("412@1796028864.000042:vfio_msix_vector_do_use  (0000:00:05.0) vector 3 used"))
        let a = Annotation.vmmStep(VMMStep(at: 5_000, line: line))
        let bytes = Recording.header + Recording.encode(a) + Recording.encode(.end)
        #expect(try Recording.read(bytes) == [.annotation(a), .annotation(.end)])
        for text in ["type=vmm_step\nline=vfio_msix_enable x", "type=vmm_step\nat=1", "type=vmm_step\nat=x\nline=vfio_a",
                     "type=vmm_step\nat=1\nline=qemu-system-x86_64: terminating"] {
            var bad = Recording.header
            bad += withUnsafeBytes(of: UInt32(2).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian) { Array($0) }
            bad += Array(text.utf8)
            #expect(throws: RecordingError.self, "\(text)") { try Recording.read(bad) }
        }
    }

    let nic = "0000:00:05.0"

    func step(_ text: String, at: UInt64) -> VMMStep { VMMStep(at: at, line: QEMUTraceLine(Substring(text))!) }
    func request(_ vector: Int, irq: Int32, at: UInt64, result: Int64 = 0) -> Event {
        Event(timeNs: at, result: result, tgid: 7, pid: 7, irq: irq, comm: "qemu", device: "",
              kind: .requestIRQ(name: "vfio-msix[\(vector)](\(nic))", flags: 0))
    }

    @Test func unmaskPairsWithTheNextRequestOfItsVectorWhicheverArrivesFirst() {
        var u = GuestUnmasks()
        #expect(u.apply(step("vfio_msix_vector_do_use  (\(nic)) vector 0 used", at: 100)) == nil)
        let first = u.apply(request(0, irq: 40, at: 130))
        #expect(first?.vector == 0 && first?.latency == 30 && first?.irq == 40)
        // the host's request read before QEMU's line: paired when the line comes
        #expect(u.apply(request(1, irq: 41, at: 260)) == nil)
        #expect(u.apply(step("vfio_msix_vector_do_use  (\(nic)) vector 1 used", at: 200))?.latency == 60)
        // a reenable re-requests vector 0: no unmask of 0 is open, nothing pairs
        #expect(u.apply(request(0, irq: 40, at: 265)) == nil)
        // a release re-requests the irq for QEMU's own eventfd: not the host backing a use
        u.apply(step("vfio_msix_vector_release  (\(nic)) vector 1 released", at: 300))
        #expect(u.apply(step("vfio_msix_vector_do_use  (\(nic)) vector 1 used", at: 280)) == nil)
        // a failed request backs nothing
        u.apply(step("vfio_msix_vector_do_use  (\(nic)) vector 2 used", at: 400))
        #expect(u.apply(request(2, irq: 42, at: 410, result: -28)) == nil)
        u.apply(request(1, irq: 41, at: 310))
        let table = u.unmasks.map { "\($0.vector)@\($0.unmasked):\($0.latency.map(String.init) ?? "-")" }
        #expect(table == ["0@100:30", "1@200:60", "1@280:-", "2@400:-"], "\(table)")
    }

    @Test func summaryListsEachUnmaskRelativeToTheStart() throws {
        var pipeline = Pipeline(lifecycles: true, keepExited: true)
        _ = pipeline.apply(step("vfio_msix_vector_do_use  (\(nic)) vector 0 used", at: 1_100))
        let s = pipeline.apply(request(0, irq: 40, at: 1_600))
        #expect(s.unmask?.latency == 500)
        let summary = UnmaskSummary(pipeline.unmasks!, model: pipeline.model, include: { _ in true })
        let json = summary.adding(to: .object([("summary", .object([("seconds", .double(1))]))]), startNs: 1_000).text
        #expect(json == #"{"summary":{"seconds":1.0,"guest_unmasks":[{"guest":"pid-7","device":"0000:00:05.0","vector":0,"unmasked_ns":100,"ready_ns":600,"irq":40,"latency_ns":500}]}}"#, "\(json)")
        let text = summary.text(TraceFormat(start: 1_000, color: false))
        #expect(text.contains("0000:00:05.0  0       +0.000000     +0.000000   40   0.001 ms"), "\(text)")
        // nothing from QEMU: the summary as it was
        let none = UnmaskSummary(GuestUnmasks(), model: pipeline.model, include: { _ in true })
        #expect(none.adding(to: .object([("summary", .object([]))]), startNs: 0).text == #"{"summary":{}}"#)
        #expect(none.text(TraceFormat(start: 0, color: false)).isEmpty)
    }
}
