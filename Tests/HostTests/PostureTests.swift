import Foundation
import IrqscopeHost
import Testing
import TestSupport

extension Host {
    /// The posture doctor reports, against what this machine says through other files.
    @Suite struct Posture {
        @Test func remappingMatchesTheIRQChipsAndIOMMUInterrupts() throws {
            let r = try run([HostEnv.binary, "doctor", "--json"])
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            let posture = try #require(json["posture"] as? [String: [String: String]], "no posture in doctor --json: \(r.stderr)")
            let reported = posture["interrupt_remapping"]?["value"]
            // independent of /proc/interrupts and /sys/class/iommu: each irq's chip in sysfs, and
            // the IOMMU's own fault/event interrupt ("dmar0" for VT-d, "AMD-Vi..." for AMD-Vi)
            let irqs = listDirectory("/sys/kernel/irq")
            let chips = irqs.compactMap { try? String(contentsOfFile: "/sys/kernel/irq/\($0)/chip_name", encoding: .utf8) }
            let actions = irqs.compactMap { try? String(contentsOfFile: "/sys/kernel/irq/\($0)/actions", encoding: .utf8) }
                .flatMap { $0.split(whereSeparator: { $0 == "," || $0 == "\n" }) }
            let remapped = chips.contains { $0.hasPrefix("IR-") }
            let intel = actions.contains { $0.hasPrefix("dmar") }, amd = actions.contains { $0.hasPrefix("AMD-Vi") }
            let expected = !remapped ? "none" : intel && !amd ? "intel" : amd && !intel ? "amd" : "unknown"
            #expect(reported == expected, "doctor: \(posture["interrupt_remapping"] ?? [:]); chips remapped=\(remapped), IOMMU irqs intel=\(intel) amd=\(amd)")
            #expect(!(posture["msix_dynamic"]?["from"] ?? "").isEmpty && ["yes", "no", "unknown"].contains(posture["msix_dynamic"]?["value"] ?? ""))
            if expected == "none" { #expect(posture["posted_interrupts"]?["value"] == "no") }
            // the table says the same
            let text = try run([HostEnv.binary, "doctor"]).stdout
            #expect(text.contains("interrupt remapping  \(reported ?? "?") ("), "doctor's table: \(text.prefix(800))")
        }

        /// QEMU's version read from its binary's .rodata equals what the binary prints.
        @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64")))
        func qemuVersionFromItsBinary() throws {
            let printed = try run(["/usr/bin/qemu-system-x86_64", "--version"]).stdout
            // "QEMU emulator version 7.2.22 (Debian ...)"
            let version = printed.split(separator: "\n").first?.split(separator: " ").dropFirst(3).first.map(String.init)
            let found = VMMExecutables().identify(exe: "/usr/bin/qemu-system-x86_64")
            #expect(found?.vmm == "qemu" && found?.version != nil && found?.version == version, "read \(String(describing: found)), printed \(printed.prefix(80))")
            let shell = VMMExecutables().identify(exe: "/bin/sh")
            #expect(shell?.vmm != "qemu" && shell?.version == nil, "\(String(describing: shell))")
        }
    }
}
