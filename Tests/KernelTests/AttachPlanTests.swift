import Foundation
import IrqscopeABI
import IrqscopeDecode
@testable import IrqscopeKernel
import Testing

/// A kernel that has every hook of the catalog, by every mechanism; tests take away from it.
func everythingKernel(_ edit: (inout KernelFacts) -> Void = { _ in }) -> KernelFacts {
    let hooks = HookCatalog.families.flatMap { $0.alternatives.flatMap(\.hooks) }
    let functions = hooks.filter { if case .function = $0.kind { true } else { false } }
    let tracepoints = hooks.filter { if case .tracepoint = $0.kind { true } else { false } }
    var facts = KernelFacts(
        release: "test", btf: .available("btf"), trampolines: .available("trampolines"), funcRet: .available("func ret"),
        kprobes: .available("kprobes"), modules: Set(hooks.compactMap(\.module)), btfFunctions: Set(functions.map(\.name)),
        btfTracepoints: Set(tracepoints.map(\.name)), tracepoints: Set(tracepoints.map(\.displayName)),
        kallsyms: Set(functions.map(\.name)), kallsymsTime: nil)
    edit(&facts)
    return facts
}

func plan(_ facts: KernelFacts, failed: [String: [Mechanism: String]] = [:],
          allowed: Set<MechanismClass> = Set(MechanismClass.allCases)) -> AttachPlan {
    AttachPlan(catalog: HookCatalog.families, facts: facts, allowed: allowed, failed: failed)
}

func hookStates(_ plan: AttachPlan) -> [String: ProbeReport.State] {
    Dictionary(plan.families.flatMap(\.hooks).map { ($0.name, $0.state) }, uniquingKeysWith: { a, _ in a })
}

@Suite struct AttachPlanTests {
    @Test func thePreferredAlternativeWhenItsFunctionExists() {
        let p = plan(everythingKernel())
        #expect(p.choices["__msi_domain_alloc_irqs"]?.mechanism == .fexit)
        #expect(p.choices["__msi_domain_alloc_irqs"]?.programs.map(\.description) == ["fexit____msi_domain_alloc_irqs"])
        for other in ["msi_domain_alloc_irqs_descs_locked", "msi_domain_alloc_irqs_all_locked", "msi_domain_alloc_irqs_range_locked"] {
            #expect(p.choices[other] == nil)
            #expect(hookStates(p)[other] == .standby(coveredBy: "__msi_domain_alloc_irqs"))
        }
    }

    @Test func theNextAlternativeWhenThePreferredOnesAreMissing() {
        // a 6.12-like kernel: __msi_domain_alloc_irqs inlined (static), no _descs_locked (6.1 only)
        let gone = ["__msi_domain_alloc_irqs", "msi_domain_alloc_irqs_descs_locked"]
        let p = plan(everythingKernel { f in
            f.btfFunctions.subtract(gone)
            f.kallsyms.subtract(gone)
        })
        #expect(p.choices["msi_domain_alloc_irqs_all_locked"]?.mechanism == .fexit)
        #expect(p.choices["msi_domain_alloc_irqs_range_locked"]?.mechanism == .fexit)
        for name in gone { #expect(p.choices[name] == nil) }
        #expect(hookStates(p)["__msi_domain_alloc_irqs"] == .standby(coveredBy: "msi_domain_alloc_irqs_all_locked"))
    }

    @Test func onlyTheDeliveryTracepointPrefersTpBTF() {
        let p = plan(everythingKernel())
        #expect(p.choices["irq:irq_handler_exit"]?.mechanism == .tpBTF)
        let lifecycle = HookCatalog.families.flatMap { $0.alternatives.flatMap(\.hooks) }.filter {
            if case .tracepoint = $0.kind { $0.name != "irq_handler_exit" } else { false }
        }
        #expect(lifecycle.count >= 20)
        for hook in lifecycle { #expect(p.choices[hook.displayName]?.mechanism == .rawTP, "\(hook.displayName)") }
        // without tracefs to name them, tracepoints still attach through their BTF
        let noTracefs = plan(everythingKernel { $0.tracepoints = [] })
        for hook in lifecycle {
            #expect(hookStates(noTracefs)[hook.displayName] == .attached(
                mechanism: "tp_btf", fallback: nil), "\(hook.displayName)")
        }
    }

    @Test func fexitFallsBackToKretprobeAfterALoadFailure() {
        let why = "load failed: Invalid argument (verifier: something)"
        let p = plan(everythingKernel(), failed: ["request_threaded_irq": [.fexit: why]])
        let choice = p.choices["request_threaded_irq"]
        #expect(choice?.mechanism == .kretprobe)
        #expect(choice?.programs.map(\.description) == ["kprobe__request_threaded_irq", "kretprobe__request_threaded_irq"])
        #expect(hookStates(p)["request_threaded_irq"] == .attached(mechanism: "kretprobe", fallback: "fexit: \(why)"))
        // the others are not affected
        #expect(p.choices["free_irq"]?.mechanism == .fexit)
    }

    @Test func aFunctionReturningAStructIsKprobeOnly() throws {
        let p = plan(everythingKernel())
        #expect(p.choices["pci_msix_alloc_irq_at"]?.mechanism == .kretprobe)
        #expect(!p.programs.contains { $0.hook == "pci_msix_alloc_irq_at" && $0.mechanism == .fexit })

        // where the symbol is missing (before 6.2), doctor's reason is what the real 6.1 lab said
        let old = plan(everythingKernel { $0.kallsyms.remove("pci_msix_alloc_irq_at"); $0.btfFunctions.remove("pci_msix_alloc_irq_at") })
        let lab = try labDoctorHooks("6.1/main/hostdrivers.doctor.json")["pci_msix_alloc_irq_at"]
        #expect(hookStates(old)["pci_msix_alloc_irq_at"] == .unavailable(reason: try #require(lab?["reason"] as? String)))
    }

    @Test func missingEverythingLeavesEveryHookUnavailableWithEveryReason() {
        let none = KernelFacts(
            release: "bare", btf: .unavailable(short: "no kernel BTF", detail: ""),
            trampolines: .unavailable(short: "no trampolines", detail: ""), funcRet: .unavailable(short: "no func ret", detail: ""),
            kprobes: .unavailable(short: "no kprobes", detail: ""), modules: [], btfFunctions: [], btfTracepoints: [],
            tracepoints: [], kallsyms: [], kallsymsTime: nil)
        let p = plan(none)
        #expect(p.programs.isEmpty)
        for hook in HookCatalog.families.flatMap({ $0.alternatives.flatMap(\.hooks) }) {
            guard case .unavailable(let reason)? = hookStates(p)[hook.displayName] else {
                Issue.record("\(hook.displayName): \(String(describing: hookStates(p)[hook.displayName]))")
                continue
            }
            if let module = hook.module {
                #expect(reason == "module \(module) not loaded")
                continue
            }
            // one reason per mechanism the hook could use, each saying what this kernel lacks
            let expected: [String] = switch hook.kind {
            case .function(returnsValue: true, structReturn: true):
                ["fexit: cannot hook a function that returns a struct by value", "kretprobe: no kprobes"]
            case .function(returnsValue: true, structReturn: false): ["fexit: no trampolines", "kretprobe: no kprobes"]
            case .function(returnsValue: false, _): ["fentry: no trampolines", "kprobe: no kprobes"]
            case .tracepoint where hook.typedArgs: ["tp_btf: no kernel BTF", "raw_tp: no such tracepoint in this kernel"]
            case .tracepoint: ["raw_tp: no such tracepoint in this kernel", "tp_btf: no kernel BTF"]
            }
            #expect(reason == expected.joined(separator: "; "), "\(hook.displayName)")
        }
    }

    @Test func withoutBpfGetFuncRetNoFexit() throws {
        // 5.10: trampolines work, bpf_get_func_ret (5.17) does not exist
        let p = plan(everythingKernel { $0.funcRet = .unavailable(short: KernelFacts.noFuncRet, detail: "") })
        #expect(!p.choices.values.contains { $0.mechanism == .fexit })
        // what the lab's checks demand of a real 5.10 (LabChecks.kernelCapabilities)
        for name in ["request_threaded_irq", "free_irq", "msi_domain_alloc", "intel_irq_remapping_alloc", "irq_remapping_alloc"] {
            guard case .attached(let mechanism, let fallback)? = hookStates(p)[name] else {
                Issue.record("\(name) not attached")
                continue
            }
            #expect(mechanism == "kretprobe")
            #expect(fallback?.hasPrefix("fexit: ") == true && fallback?.contains("bpf_get_func_ret") == true)
        }
        for name in ["msi_domain_free", "intel_irq_remapping_free"] {
            #expect(p.choices[name]?.mechanism == .fentry)
        }
    }

    @Test func attachLimitsTheMechanisms() {
        let p = plan(everythingKernel(), allowed: [.kprobe, .rawTP])
        #expect(Set(p.choices.values.map(\.mechanism)).isSubset(of: [.kprobe, .kretprobe, .rawTP]))
        #expect(hookStates(p)["free_irq"] == .attached(mechanism: "kretprobe", fallback: nil))
    }
}

/// Every program name the loader can ask for is in the compiled object, and every program
/// in the object is one the loader can ask for: a typo fails here, not at a user's start-up.
@Suite struct ProgramNameTests {
    static var constructible: Set<String> {
        let slotVariants = sequence(first: Int(IRQSCOPE_IRQ_SLOTS_MIN)) { $0 < Int(IRQSCOPE_IRQ_SLOTS_MAX) ? $0 * 2 : nil }
            .map { "__\($0)" }
        var names = Set<String>()
        for hook in HookCatalog.families.flatMap({ $0.alternatives.flatMap(\.hooks) }) {
            // only irq_handler_exit has specialized programs (delivery.h's slot sizes)
            let variants = hook.name == "irq_handler_exit" ? slotVariants : [""]
            for variant in variants {
                for candidate in AttachPlan.candidates(for: hook, variant: variant) {
                    names.formUnion(candidate.programs.map(\.description))
                }
            }
        }
        return names
    }

    @Test func everyPlannedProgramIsInTheObject() {
        #expect(EmbeddedBPF.irqscopePrograms.count > 100)
        let missing = Self.constructible.subtracting(EmbeddedBPF.irqscopePrograms)
        #expect(missing.isEmpty, "planned but not in BPF/: \(missing.sorted())")
    }

    @Test func everyProgramInTheObjectCanBePlanned() {
        let orphans = EmbeddedBPF.irqscopePrograms.subtracting(Self.constructible)
        #expect(orphans.isEmpty, "in BPF/ but never planned: \(orphans.sorted())")
    }
}

/// Doctor's hooks in a lab fixture, by name.
func labDoctorHooks(_ path: String) throws -> [String: [String: Any]] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/lab/\(path)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
    var out: [String: [String: Any]] = [:]
    for family in json["families"] as? [[String: Any]] ?? [] {
        for hook in family["hooks"] as? [[String: Any]] ?? [] { out[hook["name"] as? String ?? ""] = hook }
    }
    return out
}
