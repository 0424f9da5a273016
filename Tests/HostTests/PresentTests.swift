import Foundation
import Testing
import TestSupport

extension Host {
    /// Devices whose MSI/MSI-X vectors were allocated before irqscope started (every device of
    /// this host: its drivers bound at boot) have their series, against what the kernel says.
    @Suite struct Present {
        struct Device {
            var address: String
            var driver: String
            var irqs: [Int]
            var requested: Int
        }

        /// The kernel's own view: msi_irqs, the driver link, the irqs with a handler.
        static func devices() throws -> [Device] {
            let fm = FileManager.default
            let base = "/sys/bus/pci/devices/"
            return try fm.contentsOfDirectory(atPath: base).sorted().compactMap { address in
                let irqs = ((try? fm.contentsOfDirectory(atPath: base + address + "/msi_irqs")) ?? []).compactMap { Int($0) }.sorted()
                guard !irqs.isEmpty else { return nil }
                let driver = ((try? fm.destinationOfSymbolicLink(atPath: base + address + "/driver")) ?? "")
                    .split(separator: "/").last.map(String.init) ?? ""
                let requested = irqs.filter { irq in
                    !((try? String(contentsOfFile: "/sys/kernel/irq/\(irq)/actions", encoding: .utf8)) ?? "")
                        .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                }
                return Device(address: address, driver: driver, irqs: irqs, requested: requested.count)
            }
        }

        /// A sample as one comparable line: its labels sorted, as a dictionary's order is not.
        static func line(_ s: Sample) -> String {
            s.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + " \(s.value)"
        }

        @Test func devicesAllocatedBeforeTheStartHaveTheirVectorsAndInterrupts() throws {
            let before = try Self.devices()
            try #require(!before.isEmpty, "no PCI device with MSI irqs on this host: nothing to check")
            let recording = NSTemporaryDirectory() + "irqscope-present-\(UUID().uuidString).rec"
            defer { try? FileManager.default.removeItem(atPath: recording) }
            let (server, port) = try HostEnv.serve(["--record", recording])
            var stopped = false
            defer { if !stopped { _ = server.stop() } }

            // the device counter over an interval, bounded by /proc/interrupts over the intervals
            // just inside and just outside it
            let outer0 = try procInterrupts()
            let first = try HostEnv.scrape(port)
            let inner0 = try procInterrupts()
            // interrupts of our own, so that at least the disk's count moves
            let file = "/var/tmp/irqscope-present-\(UUID().uuidString).img"
            defer { try? FileManager.default.removeItem(atPath: file) }
            try run(["dd", "if=/dev/zero", "of=\(file)", "bs=4k", "count=2000", "oflag=direct", "status=none"])
            let inner1 = try procInterrupts()
            let second = try HostEnv.scrape(port)
            let outer1 = try procInterrupts()
            let after = try Self.devices()

            var moved = 0
            var summary: [String] = []
            for d in before {
                guard let now = after.first(where: { $0.address == d.address }), now.irqs == d.irqs else { continue }
                let labels = ["device": d.address, "guest": "", "driver": d.driver]
                func vectors(_ state: String, _ e: ParsedExposition) -> Double? {
                    e.value("irqscope_msix_vectors", labels.merging(["state": state]) { $1 })
                }
                for e in [first, second] {
                    #expect(vectors("allocated", e) == Double(d.irqs.count), "\(d.address): msi_irqs holds \(d.irqs)")
                    #expect(vectors("requested", e) == Double(d.requested), "\(d.address): \(d.requested) irqs with a handler")
                    #expect(vectors("unbacked", e) == 0, "\(d.address)")
                }
                // no IOMMU: no IRTE, stated; with one, which vector holds one is not known at start
                let iommus = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/iommu")) ?? []
                #expect(second.value("irqscope_irte_entries", labels) == (iommus.isEmpty ? 0 : nil), "\(d.address)")
                #expect(second.value("irqscope_msix_grows_total", labels.merging(["mode": "reenable"]) { $1 }) == 0)

                func sum(_ p: [Int: UInt64]) -> UInt64 { d.irqs.reduce(0) { $0 + (p[$1] ?? 0) } }
                let low = sum(inner1) - sum(inner0), high = sum(outer1) - sum(outer0)
                let a = first.value("irqscope_device_interrupts_total", labels)
                let b = second.value("irqscope_device_interrupts_total", labels)
                #expect(a != nil && b != nil, "\(d.address) has no irqscope_device_interrupts_total")
                guard let a, let b else { continue }
                let ours = UInt64(b - a)
                #expect(low <= ours && ours <= high, "\(d.address): irqscope +\(ours), /proc/interrupts +\(low)...+\(high)")
                if ours > 0 { moved += 1 }
                summary.append("\(d.address) \(d.driver) vectors=\(d.irqs.count) requested=\(d.requested) interrupts=+\(ours) (proc +\(low)...+\(high))")
            }
            #expect(moved > 0, "no device's interrupts moved under disk writes")
            print("present devices: " + summary.joined(separator: "; "))

            // the recording replays to the device series the exporter served at its last scrape
            _ = server.stop()
            stopped = true
            let replay = try run([HostEnv.binary, "replay", "--metrics", recording], timeout: 60)
            #expect(replay.status == 0, "\(replay.stderr)")
            let replayed = try parseExposition(replay.stdout)
            for d in before {
                for name in ["irqscope_msix_vectors", "irqscope_device_interrupts_total"] {
                    let served = second.values(name, where: ["device": d.address]).map(Self.line).sorted()
                    let again = replayed.values(name, where: ["device": d.address]).map(Self.line).sorted()
                    #expect(!served.isEmpty && served == again, "\(d.address) \(name): served \(served), replayed \(again)")
                }
            }
            let text = try String(contentsOfFile: recording, encoding: .isoLatin1)
            #expect(text.components(separatedBy: "type=present").count - 1 == before.count, "one present annotation per device")
        }
    }
}
