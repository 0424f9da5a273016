import Glibc
/// The loader's loop, without the kernel: plan, try the plan, and plan again without the
/// (hook, mechanism) pairs the kernel refused, until one plan loads and attaches whole.
///
/// It ends by construction: a round that is retried has added at least one pair to `failed`,
/// a pair in `failed` is never planned again, and a catalog has finitely many pairs. A round
/// that refuses nothing new ends the loop with an error instead.
enum Settle {
    /// What the kernel made of one plan.
    enum Attempt<Loaded> {
        case loaded(Loaded)
        /// Program name -> why the kernel refused it (load or attach). `error`: what to say if
        /// nothing new can be excluded.
        case refused([String: String], error: String)
    }

    struct Outcome<Loaded> {
        var plan: AttachPlan
        var loaded: Loaded
        var rounds: Int
    }

    static func run<Loaded>(plan makePlan: ([String: [Mechanism: String]]) -> AttachPlan,
                            attempt: (AttachPlan) throws(KernelError) -> Attempt<Loaded>) throws(KernelError) -> Outcome<Loaded> {
        var failed: [String: [Mechanism: String]] = [:]
        var rounds = 0
        while true {
            rounds += 1
            let plan = makePlan(failed)
            switch try attempt(plan) {
            case .loaded(let loaded):
                return Outcome(plan: plan, loaded: loaded, rounds: rounds)
            case .refused(let refused, let error):
                if exclude(refused, plan: plan, from: &failed) == 0 { throw KernelError(error) }
            }
        }
    }

    /// Records each refused program's (hook, mechanism) in `failed`; returns how many pairs are new.
    static func exclude(_ refused: [String: String], plan: AttachPlan, from failed: inout [String: [Mechanism: String]]) -> Int {
        var added = 0
        for (program, why) in refused {
            // Every fexit program reads the return value with bpf_get_func_ret (helper 184, 5.17+).
            // KernelFacts tests for it; should the kernel still refuse it, fail every fexit at once
            // (one per load took 14 rounds and 24 s on 5.10 under emulation).
            let noFuncRet = why.contains("unknown#184") && program.hasPrefix("\(Mechanism.fexit.rawValue)__")
            let reason = noFuncRet ? KernelFacts.noFuncRet : why
            for (hook, choice) in plan.choices
            where choice.programs.contains(where: { $0.description == program }) || (noFuncRet && choice.mechanism == .fexit) {
                if failed[hook]?[choice.mechanism] == nil { added += 1 }
                failed[hook, default: [:]][choice.mechanism] = reason
            }
        }
        return added
    }

    /// What doctor says about a program the verifier refused: the errno, and the last line of
    /// the verifier's log that says something (not its statistics).
    static func loadFailure(errno: Int32, log: String) -> String {
        let noise = ["--", "processed ", "verification time", "stack depth", "mark_precise"]
        let complaint = log.split(separator: "\n").map(String.init)
            .last { line in !line.isEmpty && !noise.contains { line.hasPrefix($0) } }
        return "load failed: \(String(cString: strerror(Int32(truncatingIfNeeded: errno.magnitude))))" + (complaint.map { " (verifier: \($0))" } ?? "")
    }
}
