import Foundation
import LabChecks
import Testing
import TestSupport

/// The lab's results (Tests/Lab/run-lab.sh, run by 'make lab' and 'make test'): Debian's 6.1 and
/// 6.12 kernels, booted under QEMU, each scenario checked against the guest's ground truth.
let labResults = ProcessInfo.processInfo.environment["IRQSCOPE_LAB_RESULTS"] ?? packageRoot + "/.lab/results"

@Suite(.enabled(if: FileManager.default.fileExists(atPath: labResults),
                "no lab results in \(labResults): run 'make lab' (root, QEMU, Debian's kernel packages)"))
struct LabTests {
    static let kernels = ["6.1", "6.12"]

    @Test(arguments: kernels) func hostDriversMatchTheKernel(kernel: String) throws {
        try LabChecks.hostDrivers("\(labResults)/\(kernel)/main", name: "hostdrivers", kprobes: false)
    }

    @Test(arguments: kernels) func hostDriversWithFunctionHooksForcedToKprobes(kernel: String) throws {
        try LabChecks.hostDrivers("\(labResults)/\(kernel)/kprobe", name: "hostdrivers-kprobe", kprobes: true)
    }

    @Test(arguments: kernels) func tracepointsOnlyReportsWhatIsMissing(kernel: String) throws {
        try LabChecks.tracepointsOnly("\(labResults)/\(kernel)/kprobe")
    }

    @Test(arguments: kernels) func vfioGuestEnablingEveryVector(kernel: String) throws {
        try LabChecks.vfio("\(labResults)/\(kernel)/main")
    }

    @Test(arguments: kernels) func traceAroundAVMM(kernel: String) throws {
        try LabChecks.trace("\(labResults)/\(kernel)/main")
    }

    @Test(arguments: kernels) func twoGuestsRaisingInterrupts(kernel: String) throws {
        let findings = try LabChecks.guests("\(labResults)/\(kernel)/guests")
        print("lab \(kernel) guests:\n\(findings)")
    }

    @Test(arguments: kernels) func hostVectorExhaustion(kernel: String) throws {
        try LabChecks.exhaustion("\(labResults)/\(kernel)/exhaustion")
    }
}
