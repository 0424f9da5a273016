import IrqscopeDecode

/// `irqscope doctor`: what is attached, how, what is not and what that costs.
public enum DoctorReport {
    /// Whether `serve` has its core metric on this kernel.
    public static func canServe(_ report: ProbeReport, coreFamily: String) -> Bool {
        report.families.first { $0.name == coreFamily }?.available ?? false
    }

    public static func text(_ report: ProbeReport, coreFamily: String, color: Bool = false) -> String {
        let green = color ? "\u{1b}[32m" : "", red = color ? "\u{1b}[31m" : "", dim = color ? "\u{1b}[2m" : ""
        let bold = color ? "\u{1b}[1m" : "", reset = color ? "\u{1b}[0m" : ""
        var out = "\(bold)Kernel\(reset)\n"
        let facts = report.kernel + (report.mapBytes.isEmpty ? [] : [ProbeReport.KernelFact(name: "BPF maps", value: mapSummary(report.mapBytes))])
        let width = facts.map(\.name.count).max() ?? 0
        for fact in facts {
            out += "  \(pad(fact.name, width))  \(fact.value)\n"
        }
        out += "\n\(bold)Posture\(reset) (whether MSI-X resizes can lose interrupts; x86)\n"
        for line in posture(report.posture) {
            out += "  \(pad(line.name, 19))  \(line.value) (\(dim)\(line.why)\(reset))\n"
        }
        out += "\n\(bold)Probes\(reset)\n"
        let familyWidth = report.families.map(\.name.count).max() ?? 0
        let hookWidth = report.families.flatMap(\.hooks).map(\.name.count).max() ?? 0
        for family in report.families {
            let state = family.available ? "\(green)attached   \(reset)" : "\(red)unavailable\(reset)"
            out += "  \(pad(family.name, familyWidth))  \(state)  \(family.summary)\n"
            for hook in family.hooks {
                let detail: String
                switch hook.state {
                case .attached(let mechanism, let fallback):
                    detail = "\(green)\(mechanism)\(reset)" + (fallback.map { " (\(dim)instead of \($0)\(reset))" } ?? "")
                case .standby(let cover): detail = "\(dim)standby: \(cover) covers this kernel\(reset)"
                case .unavailable(let reason): detail = "\(red)not attached\(reset): \(reason)"
                }
                out += "  \(pad("", familyWidth))    \(pad(hook.name, hookWidth))  \(detail)\n"
            }
            if !family.available {
                out += "  \(pad("", familyWidth))    without it: \(family.cost)\n"
            }
        }
        let attached = report.families.filter(\.available).count
        out += "\n"
        if canServe(report, coreFamily: coreFamily) {
            out += "irqscope can serve: \(attached) of \(report.families.count) probe families attached"
            if attached < report.families.count {
                out += "; the metrics of the \(report.families.count - attached) others are absent, not zero"
            }
            out += ".\n"
        } else {
            out += "irqscope cannot serve: the \(coreFamily) family did not attach.\n"
        }
        return out
    }

    public static func json(_ report: ProbeReport, coreFamily: String) -> JSON {
        .object([
            ("can_serve", .bool(canServe(report, coreFamily: coreFamily))),
            ("kernel", .object(report.kernel.map { ($0.name, .string($0.value)) })),
            ("bpf_map_bytes", .object(report.mapBytes.sorted { $0.key < $1.key }.map { ($0.key, .uint($0.value)) })),
            ("posture", .object(posture(report.posture).map { line in
                (line.key, .object([("value", .string(line.value)), ("from", .string(line.why))]))
            })),
            ("families", .array(report.families.map { family in
                .object([
                    ("name", .string(family.name)),
                    ("available", .bool(family.available)),
                    ("summary", .string(family.summary)),
                    ("cost_when_missing", .string(family.cost)),
                    ("hooks", .array(family.hooks.map { hook in
                        switch hook.state {
                        case .attached(let m, let fallback):
                            .object([("name", .string(hook.name)), ("state", .string("attached")), ("mechanism", .string(m))]
                                    + (fallback.map { [("fallback_because", JSON.string($0))] } ?? []))
                        case .standby(let cover):
                            .object([("name", .string(hook.name)), ("state", .string("standby")), ("covered_by", .string(cover))])
                        case .unavailable(let reason):
                            .object([("name", .string(hook.name)), ("state", .string("unavailable")), ("reason", .string(reason))])
                        }
                    })),
                ])
            })),
        ])
    }

    /// The posture's lines, as the table and the JSON name them (the JSON keys are the
    /// irqscope_host_info labels).
    static func posture(_ p: HostPosture) -> [(name: String, key: String, value: String, why: String)] {
        [("dynamic MSI-X", "msix_dynamic", p.msixDynamic.rawValue, p.msixDynamicWhy),
         ("interrupt remapping", "interrupt_remapping", p.remapping.rawValue, p.remappingWhy),
         ("posted interrupts", "posted_interrupts", p.posted.rawValue, p.postedWhy)]
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}

/// "4.3 MiB: events 4.0 MiB, call_args 256 KiB" (the largest first; those under 64 KiB left out).
func mapSummary(_ bytes: [String: UInt64]) -> String {
    func size(_ b: UInt64) -> String { b >= 1 << 20 ? "\(Double(b * 10 / (1 << 20)) / 10) MiB" : "\(b >> 10) KiB" }
    let big = bytes.filter { $0.value >= 64 << 10 }.sorted { $0.value > $1.value }.map { "\($0.key) \(size($0.value))" }
    return size(bytes.values.reduce(0, +)) + (big.isEmpty ? "" : ": " + big.joined(separator: ", "))
}
