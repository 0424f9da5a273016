import Foundation
import LabChecks
import Testing
import TestSupport

/// The lab's results (Tests/Lab/run-lab.sh, run by 'make lab' and 'make test'): Debian's 5.10,
/// 6.1, 6.12, 6.18 and newest 7.x kernels, booted under QEMU, each scenario checked against the
/// guest's ground truth.
let labResults = ProcessInfo.processInfo.environment["IRQSCOPE_LAB_RESULTS"] ?? packageRoot + "/.lab/results"

/// What the lab run set out to boot: run-lab.sh writes `plan` (one "KERNEL BOOT" line per boot)
/// before booting, so a boot that left no results fails its tests instead of being skipped.
/// Results without a plan (kept from an older run) are checked as they are.
enum LabPlan {
    static let boots: [(kernel: String, boot: String)] = {
        if let plan = try? String(contentsOfFile: labResults + "/plan", encoding: .utf8) {
            return plan.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
                let f = line.split(separator: " ")
                return f.count >= 2 ? (String(f[0]), String(f[1])) : nil
            }
        }
        let fm = FileManager.default
        let kernels = ((try? fm.contentsOfDirectory(atPath: labResults)) ?? []).filter {
            var dir: ObjCBool = false
            return fm.fileExists(atPath: labResults + "/" + $0, isDirectory: &dir) && dir.boolValue
        }
        return kernels.sorted().flatMap { k in
            ((try? fm.contentsOfDirectory(atPath: labResults + "/" + k)) ?? []).sorted().map { (k, $0) }
        }
    }()

    /// The kernels that booted BOOT, oldest first.
    static func kernels(_ boot: String) -> [String] {
        boots.filter { $0.boot == boot }.map(\.kernel)
            .sorted { $0.split(separator: ".").compactMap { Int($0) }.lexicographicallyPrecedes($1.split(separator: ".").compactMap { Int($0) }) }
    }

    /// Every normal boot, as "KERNEL/BOOT".
    static let all: [String] = boots.filter { ["main", "guests", "kprobe", "exhaustion"].contains($0.boot) }.map { "\($0.kernel)/\($0.boot)" }
}

@Suite(.enabled(if: FileManager.default.fileExists(atPath: labResults),
                "no lab results in \(labResults): run 'make lab' (root, QEMU, Debian's kernel packages)"))
struct LabTests {
    @Test func theRunHadAPlan() {
        #expect(!LabPlan.boots.isEmpty, "\(labResults) holds no boots")
    }

    @Test(arguments: LabPlan.kernels("main")) func hostDriversMatchTheKernel(kernel: String) throws {
        try LabChecks.hostDrivers("\(labResults)/\(kernel)/main", name: "hostdrivers", kprobes: false)
    }

    @Test(arguments: LabPlan.kernels("kprobe")) func hostDriversWithFunctionHooksForcedToKprobes(kernel: String) throws {
        try LabChecks.hostDrivers("\(labResults)/\(kernel)/kprobe", name: "hostdrivers-kprobe", kprobes: true)
    }

    @Test(arguments: LabPlan.kernels("kprobe")) func tracepointsOnlyReportsWhatIsMissing(kernel: String) throws {
        try LabChecks.tracepointsOnly("\(labResults)/\(kernel)/kprobe")
    }

    @Test(arguments: LabPlan.kernels("main")) func vfioGuestEnablingEveryVector(kernel: String) throws {
        try LabChecks.vfio("\(labResults)/\(kernel)/main")
    }

    @Test(arguments: LabPlan.kernels("main")) func traceAroundAVMM(kernel: String) throws {
        try LabChecks.trace("\(labResults)/\(kernel)/main")
        try LabChecks.traceRecording("\(labResults)/\(kernel)/main")
    }

    @Test(arguments: LabPlan.kernels("guests")) func twoGuestsRaisingInterrupts(kernel: String) throws {
        let findings = try LabChecks.guests("\(labResults)/\(kernel)/guests")
        print("lab \(kernel) guests:\n\(findings)")
    }

    @Test(arguments: LabPlan.kernels("guests")) func aLossOnAnUnwatchedLineIsBlindNotClaimed(kernel: String) throws {
        print("lab \(kernel) " + (try LabChecks.unshared("\(labResults)/\(kernel)/guests")))
    }

    @Test(arguments: LabPlan.kernels("exhaustion")) func hostVectorExhaustion(kernel: String) throws {
        try LabChecks.exhaustion("\(labResults)/\(kernel)/exhaustion")
    }

    /// 256 possible CPUs and 2,000+ irqs: kernel facts and map memory asserted, scrape times printed.
    @Test(arguments: LabPlan.kernels("scale")) func aHostOf256CPUsAnd2000IRQs(kernel: String) throws {
        print("lab \(kernel) scale: " + (try LabChecks.scale("\(labResults)/\(kernel)/scale")))
    }

    /// Doctor names the hooks this kernel cannot have, and VFIO grows MSI-X the kernel's way.
    @Test(arguments: LabPlan.kernels("main")) func doctorReportsWhatTheKernelLacks(kernel: String) throws {
        try LabChecks.kernelCapabilities("\(labResults)/\(kernel)/main")
    }

    /// Intel VT-d or AMD-Vi, whichever the boot had, remapped what irqscope saw allocated.
    @Test(arguments: LabPlan.all) func interruptRemappingByTheBootsIOMMU(boot: String) throws {
        try LabChecks.interruptRemapping("\(labResults)/\(boot)")
    }

    /// The full matrix ('make lab' without KERNELS or SCENARIOS): five kernels, every boot on each,
    /// AMD-Vi on two of them.
    @Test func theFullMatrix() throws {
        let plan = try? String(contentsOfFile: labResults + "/plan", encoding: .utf8)
        guard let plan, plan.hasPrefix("# full matrix") else { return }
        for boot in ["main", "guests", "kprobe", "exhaustion"] {
            #expect(LabPlan.kernels(boot).count == 5, "\(boot) booted \(LabPlan.kernels(boot))")
        }
        #expect(LabPlan.kernels("scale") == ["6.1"], "scale booted \(LabPlan.kernels("scale"))")
        let amd = Set(LabPlan.boots.filter {
            (try? String(contentsOfFile: "\(labResults)/\($0.kernel)/\($0.boot)/iommu", encoding: .utf8))?.hasPrefix("amd") == true
        }.map(\.kernel))
        #expect(amd.count >= 2, "AMD interrupt remapping ran on \(amd.sorted())")
        // Debian's QEMU 7.2 on 6.1 and 6.12, QEMU 10 on 6.12 and the newest 7.x
        let real = Set(LabPlan.boots.filter { $0.boot.hasPrefix("realvmm-") }.map { "\($0.kernel.hasPrefix("7.") ? "7.x" : $0.kernel)/\($0.boot)" })
        #expect(real.isSuperset(of: ["6.1/realvmm-qemu7.2", "6.12/realvmm-qemu7.2", "6.12/realvmm-qemu10", "7.x/realvmm-qemu10"]),
                "real-VMM cells planned: \(real.sorted())")
    }
}
