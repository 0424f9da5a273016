import Foundation
import LabChecks
import Testing
import TestSupport

/// Issue 10: real QEMUs (Tests/Lab/realvmm-boot.sh) booting a real guest through vfio-pci in
/// the lab guest; one case per (kernel, QEMU) cell the lab planned, so a planned cell without
/// results fails.
let realVMMCells: [String] = LabPlan.boots.filter { $0.boot.hasPrefix("realvmm-") }.map { "\($0.kernel)/\($0.boot)" }

@Suite(.enabled(if: !realVMMCells.isEmpty, "no real-VMM cells planned in \(labResults) (make lab with VMMS=none or SCENARIOS without VMMS)"))
struct RealVMMTests {
    @Test(arguments: realVMMCells) func realQEMUBootingAGuestThroughVFIO(cell: String) throws {
        let qemu = String(cell.split(separator: "/").last!.dropFirst("realvmm-".count))
        try LabChecks.realVMM("\(labResults)/\(cell)", qemu: qemu)
        try LabChecks.realVMMPosture("\(labResults)/\(cell)", qemu: qemu)
        try LabChecks.realVMMUnmasks("\(labResults)/\(cell)")
    }

    /// Issue 12 §1: the inner guest's NIC raising while QEMU grows its vector table, what the
    /// guest counts against what irqscope claims.
    @Test(arguments: realVMMCells) func guestRaisingWhileQEMUGrowsItsTable(cell: String) throws {
        let qemu = String(cell.split(separator: "/").last!.dropFirst("realvmm-".count))
        print("lab \(cell): " + (try LabChecks.realVMMRaise("\(labResults)/\(cell)", qemu: qemu)))
    }
}
