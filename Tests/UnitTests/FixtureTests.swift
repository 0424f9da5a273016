import Foundation
import LabChecks
import Testing
import TestSupport

/// The lab's checks on recordings kept from a lab run (Tests/Fixtures/lab, refreshed by
/// 'make fixtures'): the model replays real kernels' event streams on any machine.
@Suite struct FixtureTests {
    static let root = packageRoot + "/Tests/Fixtures/lab"
    static let kernels = ["5.10", "6.1", "6.12", "6.18", "7.3"]
    static let realVMMCells = ["6.1/realvmm-qemu7.2", "6.12/realvmm-qemu7.2", "6.12/realvmm-qemu10", "7.3/realvmm-qemu10"]

    func fixture(_ kernel: String, _ boot: String) throws -> String {
        try LabChecks.unpack("\(Self.root)/\(kernel)/\(boot)")
    }

    @Test(arguments: kernels) func hostDrivers(kernel: String) throws {
        try LabChecks.hostDrivers(try fixture(kernel, "main"), name: "hostdrivers", kprobes: false)
        try LabChecks.hostDrivers(try fixture(kernel, "kprobe"), name: "hostdrivers-kprobe", kprobes: true)
    }

    /// Fixture sanity only: these read what the lab's boot wrote (metrics, log, doctor), not
    /// anything this build computes; they keep a refreshed fixture set honest.
    @Test(arguments: kernels) func tracepointsOnlyFixtureSanity(kernel: String) throws {
        try LabChecks.tracepointsOnly(try fixture(kernel, "kprobe"))
    }

    @Test(arguments: kernels) func vfio(kernel: String) throws {
        try LabChecks.vfio(try fixture(kernel, "main"))
    }

    /// `trace` is fixture sanity (what the boot's trace printed); `traceRecording` runs this
    /// build's pipeline over the trace's recording against what the VMM did.
    @Test(arguments: kernels) func trace(kernel: String) throws {
        let dir = try fixture(kernel, "main")
        try LabChecks.trace(dir)
        try LabChecks.traceRecording(dir)
    }

    @Test(arguments: kernels) func guests(kernel: String) throws {
        try LabChecks.guests(try fixture(kernel, "guests"))
    }

    /// The scale boot runs on 6.1 only (possible_cpus=256).
    @Test func scale() throws {
        print("fixture 6.1 scale: " + (try LabChecks.scale(try fixture("6.1", "scale"))))
    }

    @Test(arguments: kernels) func exhaustion(kernel: String) throws {
        try LabChecks.exhaustion(try fixture(kernel, "exhaustion"))
    }

    /// Debian's QEMU booting a Debian guest over vfio-pci: its VFIO calls named after its guest,
    /// no host interrupt charged to it, every MSI-X shutdown paired with its descriptor free.
    @Test(arguments: realVMMCells) func realVMM(cell: String) throws {
        let parts = cell.split(separator: "/")
        let dir = try fixture(String(parts[0]), String(parts[1])), qemu = String(parts[1].dropFirst("realvmm-".count))
        try LabChecks.realVMM(dir, qemu: qemu)
        try LabChecks.realVMMPosture(dir, qemu: qemu)
    }
}
