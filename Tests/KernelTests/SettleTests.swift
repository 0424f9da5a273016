import Glibc
import IrqscopeDecode
@testable import IrqscopeKernel
import Testing

/// The loader's retry loop against made-up kernels that refuse chosen programs, the way libbpf
/// and the kernel do: a load stops at the first refused program, attaches fail one by one.
@Suite struct SettleTests {
    /// A kernel that refuses `atLoad` programs when they are loaded and `atAttach` ones when
    /// they are attached. The truth the loop's result is checked against.
    struct FakeKernel {
        var atLoad: Set<String> = []
        var atAttach: Set<String> = []
        var attempts = 0

        mutating func attempt(_ plan: AttachPlan) -> Settle.Attempt<Set<String>> {
            attempts += 1
            let programs = plan.programs.map(\.description).sorted()
            if let first = programs.first(where: atLoad.contains) {
                return .refused([first: "load failed: Invalid argument"], error: "load failed")
            }
            let refused = programs.filter(atAttach.contains)
            if !refused.isEmpty {
                return .refused(Dictionary(uniqueKeysWithValues: refused.map { ($0, "attach failed: EINVAL") }), error: "attach failed")
            }
            return .loaded(Set(programs))
        }
    }

    func settle(_ kernel: inout FakeKernel, facts: KernelFacts = everythingKernel()) throws(KernelError) -> Settle.Outcome<Set<String>> {
        try Settle.run(plan: { failed in plan(facts, failed: failed) }, attempt: { kernel.attempt($0) })
    }

    /// Nothing the kernel refused is reported attached, and what was loaded is what the plan says.
    func expectHonest(_ outcome: Settle.Outcome<Set<String>>, _ kernel: FakeKernel) {
        let refused = kernel.atLoad.union(kernel.atAttach)
        #expect(outcome.loaded.isDisjoint(with: refused))
        #expect(outcome.loaded == Set(outcome.plan.programs.map(\.description)))
        for (hook, state) in hookStates(outcome.plan) {
            guard case .attached(let mechanism, _) = state else { continue }
            let programs = outcome.plan.choices[hook]?.programs.map(\.description) ?? []
            #expect(!programs.isEmpty && programs.allSatisfy { !refused.contains($0) }, "\(hook) reported attached by \(mechanism)")
        }
    }

    @Test func aKernelRefusingEveryFexitOneByOne() throws {
        let all = plan(everythingKernel())
        let fexit = Set(all.programs.filter { $0.mechanism == .fexit }.map(\.description))
        var kernel = FakeKernel(atLoad: fexit)
        let outcome = try settle(&kernel)
        expectHonest(outcome, kernel)
        #expect(!outcome.plan.choices.values.contains { $0.mechanism == .fexit })
        // each round excludes one program: as many rounds as fexit programs, plus the one that loads
        #expect(outcome.rounds == fexit.count + 1)
        #expect(kernel.attempts == outcome.rounds)
    }

    @Test func theHelperMissingFailsEveryFexitAtOnce() throws {
        // the verifier's word for a missing bpf_get_func_ret, as 5.10 said it
        let all = plan(everythingKernel())
        let fexit = all.programs.filter { $0.mechanism == .fexit }.map(\.description)
        var rounds = 0
        let outcome = try Settle.run(plan: { plan(everythingKernel(), failed: $0) }, attempt: { p -> Settle.Attempt<Int> in
            rounds += 1
            if let first = p.programs.map(\.description).sorted().first(where: fexit.contains) {
                return .refused([first: "load failed: Invalid argument (verifier: invalid func unknown#184)"], error: "")
            }
            return .loaded(0)
        })
        #expect(outcome.rounds == 2)
        guard case .attached("kretprobe", let fallback)? = hookStates(outcome.plan)["free_irq"] else {
            Issue.record("free_irq: \(String(describing: hookStates(outcome.plan)["free_irq"]))")
            return
        }
        #expect(fallback == "fexit: \(KernelFacts.noFuncRet)")
    }

    @Test func aHookWhoseEveryMechanismFailsToAttachIsUnavailable() throws {
        var kernel = FakeKernel(atAttach: ["fexit__free_irq", "kretprobe__free_irq", "tp_btf__vector_alloc", "raw_tp__vector_alloc"])
        let outcome = try settle(&kernel)
        expectHonest(outcome, kernel)
        #expect(hookStates(outcome.plan)["free_irq"] == .unavailable(
            reason: "fexit: attach failed: EINVAL; kretprobe: attach failed: EINVAL"))
        guard case .unavailable? = hookStates(outcome.plan)["irq_vectors:vector_alloc"] else {
            Issue.record("vector_alloc should be unavailable")
            return
        }
        // fexit and raw_tp fail in round one, their fallbacks in round two, round three attaches
        #expect(outcome.rounds == 3)
    }

    @Test func aKernelRefusingEverythingStillEnds() throws {
        let every = Set(HookCatalog.families.flatMap { $0.alternatives.flatMap(\.hooks) }.flatMap { hook in
            AttachPlan.candidates(for: hook).flatMap { $0.programs.map(\.description) }
        })
        var kernel = FakeKernel(atLoad: every)
        let outcome = try settle(&kernel)
        expectHonest(outcome, kernel)
        #expect(outcome.loaded.isEmpty)
        #expect(!outcome.plan.families.contains { $0.available })
        // bounded by the (hook, mechanism) pairs: one load failure names one program
        #expect(outcome.rounds <= every.count + 1)
    }

    @Test func aRefusalThatExcludesNothingNewStops() {
        var rounds = 0
        #expect(throws: KernelError("cannot load: nothing named")) {
            _ = try Settle.run(plan: { plan(everythingKernel(), failed: $0) }, attempt: { _ -> Settle.Attempt<Int> in
                rounds += 1
                return .refused(["no_such_program": "load failed"], error: "cannot load: nothing named")
            })
        }
        #expect(rounds == 1)
    }

    @Test func theVerifiersComplaintFromAProgramsOwnLog() {
        // the kernel's log for a program libbpf 1.1 on Linux 6.1 failed to load
        let log = "reg type unsupported for arg#0 function fexit__free_irq#238\n0: R1=ctx(off=0,imm=0) R10=fp0\n1: (79) r6 = *(u64 *)(r1 +16)\nfunc 'free_irq' arg2 type UNKNOWN is not a struct\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
        #expect(Settle.loadFailure(errno: EACCES, log: log)
                == "load failed: Permission denied (verifier: func 'free_irq' arg2 type UNKNOWN is not a struct)")
    }

    @Test func aRefusalBeforeTheVerifierIsNamedByLibbpf() {
        // a program type the kernel refuses outright: the verifier never runs, the buffer stays empty
        let log = [
            "prog 'fentry__free_irq': BPF program load failed: Operation not permitted\n",
            "prog 'fentry__free_irq': failed to load: -1\n",
            "failed to load object 'irqscope'\n",
        ]
        #expect(LibbpfLog.refusedPrograms(in: log) == ["fentry__free_irq": "load failed: Operation not permitted"])
    }
}
