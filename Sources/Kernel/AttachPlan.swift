import IrqscopeDecode

/// Attach mechanisms, as the user names them in `--attach`.
public enum MechanismClass: String, CaseIterable, Sendable {
    case fentry   // fentry and fexit (BPF trampolines)
    case kprobe   // kprobe and kretprobe
    case tpBTF = "tp_btf"
    case rawTP = "raw_tp"
}

/// How BPF/common.h's macros attach a hook. The raw value is the prefix of the programs'
/// names, and the name doctor shows.
enum Mechanism: String, Sendable, CaseIterable {
    case fentry, fexit, kprobe, kretprobe
    case tpBTF = "tp_btf"
    case rawTP = "raw_tp"

    var mechanismClass: MechanismClass {
        switch self {
        case .fentry, .fexit: .fentry
        case .kprobe, .kretprobe: .kprobe
        case .tpBTF: .tpBTF
        case .rawTP: .rawTP
        }
    }
}

/// A program in the BPF object: `<mechanism>__<hook><variant>`, the names common.h's macros
/// give (`variant` names one of a hook's specialized programs, such as delivery.h's slot sizes).
struct ProgramName: Hashable, Sendable, CustomStringConvertible {
    var mechanism: Mechanism
    var hook: String
    var variant: String = ""
    var description: String { "\(mechanism.rawValue)__\(hook)\(variant)" }
}

/// How one hook is attached: the mechanism and the programs that implement it.
struct Choice: Equatable {
    var mechanism: Mechanism
    var programs: [ProgramName]
    /// Why earlier mechanisms failed at load or attach time, if they did.
    var fallback: String? = nil
}

/// Decides, per hook, which programs to load. Pure over its inputs so that a failed load or
/// attach can be fed back (`failed`) and the plan recomputed without that mechanism.
struct AttachPlan {
    var choices: [String: Choice] = [:]          // by hook display name
    var families: [ProbeReport.Family] = []

    var programs: Set<ProgramName> { Set(choices.values.flatMap(\.programs)) }

    /// `failed[hook][mechanism]` = why that mechanism did not work at load or attach time.
    /// `variants[hook name]`: a suffix naming which of a hook's specialized programs to load.
    init(catalog: [FamilySpec], facts: KernelFacts, allowed: Set<MechanismClass>,
         failed: [String: [Mechanism: String]], variants: [String: String] = [:]) {
        for family in catalog {
            let resolved = family.alternatives.map { alt in
                alt.hooks.map { hook in (hook, Self.resolve(hook, facts: facts, allowed: allowed, failed: failed[hook.displayName] ?? [:],
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
                            state = .attached(mechanism: choice.mechanism.rawValue, fallback: choice.fallback)
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

    /// The ways a hook can be attached, in order of preference, with the programs each loads:
    /// the only place program names are made.
    static func candidates(for hook: HookSpec, variant: String = "") -> [(mechanism: Mechanism, programs: [ProgramName])] {
        func name(_ m: Mechanism) -> ProgramName { ProgramName(mechanism: m, hook: hook.name, variant: variant) }
        switch hook.kind {
        case .function(returnsValue: true, let structReturn):
            let kretprobe = (Mechanism.kretprobe, [name(.kprobe), name(.kretprobe)])
            return structReturn ? [kretprobe] : [(.fexit, [name(.fexit)]), kretprobe]
        case .function(returnsValue: false, _):
            return [(.fentry, [name(.fentry)]), (.kprobe, [name(.kprobe)])]
        case .tracepoint:
            let typed = (Mechanism.tpBTF, [name(.tpBTF)]), raw = (Mechanism.rawTP, [name(.rawTP)])
            return hook.typedArgs ? [typed, raw] : [raw, typed]
        }
    }

    private enum Refusal {
        /// The kernel lacks what the mechanism needs.
        case absent(String)
        /// It was tried (a load, an attach, a test program) and the kernel refused: doctor shows
        /// it as the reason for the fallback.
        case tried(String)
    }

    static func resolve(_ hook: HookSpec, facts: KernelFacts, allowed: Set<MechanismClass>,
                        failed: [Mechanism: String], variant: String = "") -> Result<Choice, Why> {
        if let module = hook.module, !facts.modules.contains(module) {
            return .failure(Why(text: "module \(module) not loaded"))
        }
        var reasons: [String] = []
        var tried: [String] = []
        if case .function(_, structReturn: true) = hook.kind {
            reasons.append("fexit: " + (allowed.contains(.fentry) ? "cannot hook a function that returns a struct by value" : "disabled by --attach"))
        }
        for (mechanism, programs) in candidates(for: hook, variant: variant) {
            switch failed[mechanism].map(Refusal.tried) ?? refusal(mechanism, hook, facts: facts, allowed: allowed) {
            case nil:
                return .success(Choice(mechanism: mechanism, programs: programs,
                                       fallback: tried.isEmpty ? nil : tried.joined(separator: "; ")))
            case .absent(let why):
                reasons.append("\(mechanism.rawValue): \(why)")
            case .tried(let why):
                reasons.append("\(mechanism.rawValue): \(why)")
                tried.append("\(mechanism.rawValue): \(why)")
            }
        }
        return .failure(Why(text: reasons.joined(separator: "; ")))
    }

    private static func refusal(_ mechanism: Mechanism, _ hook: HookSpec, facts: KernelFacts,
                                allowed: Set<MechanismClass>) -> Refusal? {
        if !allowed.contains(mechanism.mechanismClass) { return .absent("disabled by --attach") }
        switch mechanism {
        case .fentry, .fexit:
            if !facts.trampolines.ok { return .absent(facts.trampolines.short) }
            if !facts.btfFunctions.contains(hook.name) { return .absent("not in this kernel's BTF") }
            if mechanism == .fexit && !facts.funcRet.ok { return .tried(facts.funcRet.short) }
        case .kprobe, .kretprobe:
            if !facts.kprobes.ok { return .absent(facts.kprobes.short) }
            if !facts.kallsyms.contains(hook.name) { return .absent("no such symbol in /proc/kallsyms") }
        case .tpBTF:
            if !facts.btf.ok { return .absent(facts.btf.short) }
            if !facts.btfTracepoints.contains(hook.name) { return .absent("no BTF for this tracepoint") }
        case .rawTP:
            if !facts.tracepoints.contains(hook.displayName) { return .absent("no such tracepoint in this kernel") }
        }
        return nil
    }
}
