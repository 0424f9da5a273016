/// What the loader managed to attach, per hook family and per kernel hook point.
public struct ProbeReport: Sendable, Equatable {
    public var families: [Family]
    /// Facts about the kernel that decided the outcome (BTF, fentry permission, kprobes...).
    public var kernel: [KernelFact]
    /// Whether MSI-X resizes on this host can lose interrupts, and why.
    public var posture: HostPosture
    /// Kernel memory of irqscope's BPF maps, per map, as the kernel states it (memlock in each
    /// map's fdinfo); maps it states nothing for are absent.
    public var mapBytes: [String: UInt64]

    public init(families: [Family], kernel: [KernelFact], posture: HostPosture = .unknown, mapBytes: [String: UInt64] = [:]) {
        self.families = families
        self.kernel = kernel
        self.posture = posture
        self.mapBytes = mapBytes
    }

    public struct Family: Sendable, Equatable {
        public var name: String
        public var summary: String
        /// What the user loses while this family is unavailable.
        public var cost: String
        public var hooks: [Hook]
        public var available: Bool { hooks.contains { $0.attached } }

        public init(name: String, summary: String, cost: String, hooks: [Hook]) {
            self.name = name
            self.summary = summary
            self.cost = cost
            self.hooks = hooks
        }
    }

    public struct Hook: Sendable, Equatable {
        /// Kernel function, or tracepoint as "group:name".
        public var name: String
        public var state: State
        public var attached: Bool { if case .attached = state { true } else { false } }

        public init(name: String, state: State) {
            self.name = name
            self.state = state
        }
    }

    public enum State: Sendable, Equatable {
        /// `fallback`: why the preferred mechanisms were not used, when they were tried.
        case attached(mechanism: String, fallback: String? = nil)
        /// Not needed: another variant of the family covers this kernel.
        case standby(coveredBy: String)
        case unavailable(reason: String)
    }

    public struct KernelFact: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }
}
