import Foundation
import LabChecks
import Testing
import TestSupport

/// The lab's checks on recordings kept from a lab run (Tests/Fixtures/lab, refreshed by
/// 'make fixtures'): the model replays real kernels' event streams on any machine.
@Suite struct FixtureTests {
    static let root = packageRoot + "/Tests/Fixtures/lab"
    static let kernels = ["6.1", "6.12"]

    func fixture(_ kernel: String, _ boot: String) throws -> String {
        try LabChecks.unpack("\(Self.root)/\(kernel)/\(boot)")
    }

    @Test(arguments: kernels) func hostDrivers(kernel: String) throws {
        try LabChecks.hostDrivers(try fixture(kernel, "main"), name: "hostdrivers", kprobes: false)
        try LabChecks.hostDrivers(try fixture(kernel, "kprobe"), name: "hostdrivers-kprobe", kprobes: true)
    }

    @Test(arguments: kernels) func tracepointsOnly(kernel: String) throws {
        try LabChecks.tracepointsOnly(try fixture(kernel, "kprobe"))
    }

    @Test(arguments: kernels) func vfio(kernel: String) throws {
        try LabChecks.vfio(try fixture(kernel, "main"))
    }

    @Test(arguments: kernels) func trace(kernel: String) throws {
        try LabChecks.trace(try fixture(kernel, "main"))
    }

    @Test(arguments: kernels) func guests(kernel: String) throws {
        try LabChecks.guests(try fixture(kernel, "guests"))
    }

    @Test(arguments: kernels) func exhaustion(kernel: String) throws {
        try LabChecks.exhaustion(try fixture(kernel, "exhaustion"))
    }
}
