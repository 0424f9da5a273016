import Foundation
import Testing
import TestSupport

extension Host {
    @Suite struct Doctor {
        func doctorJSON(_ extra: [String] = []) throws -> (Finished, [String: Any]) {
            let r = try run([HostEnv.binary, "doctor", "--json"] + extra)
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            return (r, json)
        }

        func hooks(_ json: [String: Any]) -> [(family: String, hook: [String: Any])] {
            (json["families"] as? [[String: Any]] ?? []).flatMap { f in
                (f["hooks"] as? [[String: Any]] ?? []).map { (f["name"] as? String ?? "", $0) }
            }
        }

        @Test func everyHookIsAttachedOrSaysWhy() throws {
            let (r, json) = try doctorJSON()
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(json["can_serve"] as? Bool == true)
            // What this kernel offers, looked up independently of irqscope.
            let hasKprobes = FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/kprobe/type")
            let hasBTF = FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux")
            let all = hooks(json)
            #expect(all.count > 40)
            for (family, hook) in all {
                let name = hook["name"] as? String ?? "?"
                switch hook["state"] as? String {
                case "attached":
                    let m = hook["mechanism"] as? String ?? ""
                    #expect(["fentry", "fexit", "kprobe", "kretprobe", "tp_btf", "raw_tp"].contains(m), "\(name): \(m)")
                    if !hasKprobes { #expect(m != "kprobe" && m != "kretprobe", "\(name) claims \(m) without kprobes") }
                    // the delivery handler reads its typed arguments (tp_btf); the others take the raw
                    // ones, where tracefs lists the tracepoint
                    if name == "irq:irq_handler_exit" && hasBTF { #expect(m == "tp_btf", "\(name) should use tp_btf where BTF exists") }
                    if name.contains(":") && name != "irq:irq_handler_exit" {
                        let parts = name.split(separator: ":")
                        let listed = ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"].contains {
                            FileManager.default.fileExists(atPath: "\($0)/\(parts[0])/\(parts[1])")
                        }
                        #expect(m == (listed ? "raw_tp" : "tp_btf"), "\(name): \(m)")
                    }
                case "unavailable":
                    let reason = hook["reason"] as? String ?? ""
                    #expect(!reason.isEmpty, "\(family)/\(name) gives no reason")
                    if !hasKprobes && !name.contains(":") && !reason.hasPrefix("module ") {
                        #expect(reason.contains("kprobes"), "\(name): '\(reason)' does not say kprobes are missing")
                    }
                case "standby":
                    #expect(hook["covered_by"] as? String != nil)
                default:
                    Issue.record("\(name): unknown state \(String(describing: hook["state"]))")
                }
            }
            let delivery = (json["families"] as? [[String: Any]])?.first { $0["name"] as? String == "irq_delivery" }
            #expect(delivery?["available"] as? Bool == true)
            for f in json["families"] as? [[String: Any]] ?? [] where f["available"] as? Bool == false {
                #expect(!(f["cost_when_missing"] as? String ?? "").isEmpty)
            }
        }

        @Test func rawTracepointsWhenForced() throws {
            let (r, json) = try doctorJSON(["--attach=raw_tp"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            for (_, hook) in hooks(json) {
                let name = hook["name"] as? String ?? ""
                if hook["state"] as? String == "attached" {
                    #expect(hook["mechanism"] as? String == "raw_tp", "\(name)")
                } else if !name.contains(":") {
                    #expect((hook["reason"] as? String ?? "").contains("disabled by --attach")
                            || (hook["reason"] as? String ?? "").hasPrefix("module "), "\(name): \(hook)")
                }
            }
        }

        @Test func textReportNamesEveryFamilyAndTheVerdict() throws {
            let (_, json) = try doctorJSON()
            let r = try run([HostEnv.binary, "doctor"])
            #expect(r.status == 0)
            for f in json["families"] as? [[String: Any]] ?? [] {
                #expect(r.stdout.contains(f["name"] as? String ?? "<none>"))
            }
            #expect(r.stdout.contains("irqscope can serve"))
            #expect(!r.stdout.contains("\u{1b}["), "no colour when stdout is not a terminal")
        }

        /// The slot cap reaches the counts map: doctor states the slots and the kernel's memory
        /// for it, which cannot be less than the values it holds (slots x possible CPUs x 48 bytes).
        @Test func slotCapAndMapMemory() throws {
            let (r, json) = try doctorJSON(["--bpf.max-irq-slots=64"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let slots = (json["kernel"] as? [String: Any])?["irq slots"] as? String ?? ""
            #expect(slots.hasPrefix("64 (irqs above 63 are counted as untracked)"), "\(slots)")
            let possible = try String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8)
            let cpus = possible.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").reduce(0) { n, range in
                let ends = range.split(separator: "-").compactMap { Int($0) }
                return n + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
            }
            let bytes = json["bpf_map_bytes"] as? [String: Int] ?? [:]
            #expect(bytes.count >= 7, "\(bytes)")
            let counts = bytes["irq_counts"] ?? 0
            #expect(counts >= 64 * cpus * 48 && counts < 64 * cpus * 48 + (1 << 20), "irq_counts: \(counts) bytes for 64 slots x \(cpus) CPUs")
            let text = try run([HostEnv.binary, "doctor", "--bpf.max-irq-slots=64"])
            #expect(text.stdout.contains("BPF maps"), "\(text.stdout)")
        }
    }
}
