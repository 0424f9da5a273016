import Foundation
import LabChecks
import Testing
import TestSupport

/// Issue 10: real QEMUs (Tests/Lab/realvmm-boot.sh) booting a real guest through vfio-pci in
/// the lab guest; one case per (kernel, QEMU) cell the lab run produced.
let realVMMCells: [String] = {
    let fm = FileManager.default
    var found: [String] = []
    for kernel in (try? fm.contentsOfDirectory(atPath: labResults)) ?? [] {
        for boot in (try? fm.contentsOfDirectory(atPath: "\(labResults)/\(kernel)")) ?? [] where boot.hasPrefix("realvmm-") {
            found.append("\(kernel)/\(boot)")
        }
    }
    return found.sorted()
}()

@Suite(.enabled(if: !realVMMCells.isEmpty, "no realvmm-* results under \(labResults): the real-VMM boots are opt-in (make lab VMMS=all) until they are fast and stable"))
struct RealVMMTests {
    @Test(arguments: realVMMCells) func realQEMUBootingAGuestThroughVFIO(cell: String) throws {
        let qemu = String(cell.split(separator: "/").last!.dropFirst("realvmm-".count))
        try LabChecks.realVMM("\(labResults)/\(cell)", qemu: qemu)
    }
}
