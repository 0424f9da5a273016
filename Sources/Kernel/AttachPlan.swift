import IrqscopeDecode

/// Attach mechanisms, as the user names them in `--attach`.
public enum MechanismClass: String, CaseIterable, Sendable {
    case fentry   // fentry and fexit (BPF trampolines)
    case kprobe   // kprobe and kretprobe
    case tpBTF = "tp_btf"
    case rawTP = "raw_tp"
}

/// How one hook is attached: the mechanism and the programs that implement it.
struct Choice: Equatable {
    var mechanism: String
    var programs: [String]
    /// Why earlier mechanisms failed at load or attach time, if they did.
    var fallback: String? = nil
}

/// Decides, per hook, which programs to load. Pure over its inputs so that a failed load or
/// attach can be fed back (`failed`) and the plan recomputed without that mechanism.
struct AttachPlan {
    var choices: [String: Choice] = [:]          // by hook display name
    var families: [ProbeReport.Family] = []

    var programs: Set<String> { Set(choices.values.flatMap(\.programs)) }

    /// `failed[hook][mechanism]` = why that mechanism did not work at load or attach time.
    /// `variants[hook name]`: a suffix naming which of a hook's specialized programs to load.
    init(catalog: [FamilySpec], facts: KernelFacts, allowed: Set<MechanismClass>,
         failed: [String: [String: String]], variants: [String: String] = [:]) {
        for family in catalog {
            let resolved = family.alternatives.map { alt in
                alt.map { hook in (hook, Self.resolve(hook, facts: facts, allowed: allowed, failed: failed[hook.displayName] ?? [:],
                                     variant: variants[hook.name] ?? "")) }
            }
            let chosen = resolved.firstIndex { alt in alt.contains { if case .success = $0.1 { true } else { false } } }
            var hooks: [ProbeReport.Hook] = []
            for (index, alt) in resolved.enumerated() {
                for (hook, result) in alt {
                    let state: ProbeReport.State
                    if let chosen, index != chosen {
                        let cover = resolved[chosen].first { if case .success = $0.1 { true } else { false } }!.0
                        state = .standby(coveredBy: cover.displayName)
                    } else {
                        switch result {
                        case .success(let choice):
                            choices[hook.displayName] = choice
                            state = .attached(mechanism: choice.mechanism, fallback: choice.fallback)
                        case .failure(let why):
                            state = .unavailable(reason: why.text)
                        }
                    }
                    hooks.append(.init(name: hook.displayName, state: state))
                }
            }
            families.append(.init(name: family.name, summary: family.summary, cost: family.cost, hooks: hooks))
        }
    }

    struct Why: Error { var text: String }

    static func resolve(_ hook: HookSpec, facts: KernelFacts, allowed: Set<MechanismClass>,
                        failed: [String: String], variant: String = "") -> Result<Choice, Why> {
        if let module = hook.module, !facts.moduleLoaded(module) {
            return .failure(Why(text: "module \(module) not loaded"))
        }
        var reasons: [String] = []
        var triedAndFailed: [String] = []
        func attempt(_ mechanism: String, _ programs: [String], _ check: () -> String?) -> Choice? {
            if let why = failed[mechanism] {
                reasons.append("\(mechanism): \(why)")
                triedAndFailed.append("\(mechanism): \(why)")
            } else if let why = check() {
                reasons.append("\(mechanism): \(why)")
            } else {
                return Choice(mechanism: mechanism, programs: programs.map { $0 + variant },
                              fallback: triedAndFailed.isEmpty ? nil : triedAndFailed.joined(separator: "; "))
            }
            return nil
        }

        switch hook.kind {
        case .function(let returnsValue, let structReturn):
            let trampoline = returnsValue ? "fexit" : "fentry"
            if let c = attempt(trampoline, ["\(trampoline)__\(hook.name)"], {
                if !allowed.contains(.fentry) { return "disabled by --attach" }
                if structReturn { return "cannot hook a function that returns a struct by value" }
                if !facts.trampolines.ok { return facts.trampolines.short }
                if !facts.hasFunction(hook.name, module: hook.module) { return "not in this kernel's BTF" }
                return nil
            }) { return .success(c) }
            let kprobe = returnsValue ? "kretprobe" : "kprobe"
            let programs = returnsValue ? ["kprobe__\(hook.name)", "kretprobe__\(hook.name)"] : ["kprobe__\(hook.name)"]
            if let c = attempt(kprobe, programs, {
                if !allowed.contains(.kprobe) { return "disabled by --attach" }
                if !facts.kprobes.ok { return facts.kprobes.short }
                if !facts.kallsyms.contains(hook.name) { return "no such symbol in /proc/kallsyms" }
                return nil
            }) { return .success(c) }

        case .tracepoint(let group):
            if let c = attempt("tp_btf", ["tp_btf__\(hook.name)"], {
                if !allowed.contains(.tpBTF) { return "disabled by --attach" }
                if !facts.btf.ok { return facts.btf.short }
                if !facts.hasTracepointBTF(hook.name, module: hook.module) { return "no BTF for this tracepoint" }
                return nil
            }) { return .success(c) }
            if let c = attempt("raw_tp", ["raw_tp__\(hook.name)"], {
                if !allowed.contains(.rawTP) { return "disabled by --attach" }
                if !facts.tracepointExists(group: group, name: hook.name, module: hook.module) {
                    return "no such tracepoint in this kernel"
                }
                return nil
            }) { return .success(c) }
        }
        return .failure(Why(text: reasons.joined(separator: "; ")))
    }
}
