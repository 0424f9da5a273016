import ArgumentParser
import Glibc
import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender
import Synchronization

extension TraceSummary.Finding: ExpressibleByArgument {}

/// Flags `trace` and `replay` share: what to follow, how to print, what fails the run.
struct TraceOptions: ParsableArguments {
    @Option(help: "Only this guest (its name as irqscope resolves it: QEMU -name, libvirt, KubeVirt, else comm-pid).")
    var guest: String?

    @Option(help: "Only this process (a VMM) and, when tracing live, its children.")
    var pid: UInt32?

    @Option(help: "Only this PCI device (0000:00:03.0).")
    var device: String?

    @Flag(help: "One JSON object per event, then a summary object.")
    var json = false

    @Option(name: .customLong("fail-on"),
            help: ArgumentHelp("Exit non-zero when the run shows lossy resizes (exit 3), failed requests (4) or lost interrupts (5); repeatable.",
                               valueName: "lossy|failure|lost"))
    var failOn: [TraceSummary.Finding] = []

    func validate() throws {
        if let device, !isPCIAddress(device) {
            throw ValidationError("--device: '\(device)' is not a PCI address like 0000:00:03.0")
        }
    }
}

func isPCIAddress(_ s: String) -> Bool {
    let parts = s.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].count == 4, parts[1].count == 2 else { return false }
    let slot = parts[2].split(separator: ".")
    return slot.count == 2 && slot[0].count == 2 && slot[1].count == 1
        && (parts[0] + parts[1] + slot[0] + slot[1]).allSatisfy(\.isHexDigit)
}

/// Decides what is shown, prints it, and turns the summary into an exit status.
final class TraceOutput: Sendable {
    let options: TraceOptions
    let format: TraceFormat
    /// Whether a process is the followed one (or, live, one of its children); nil follows all.
    let follows: (@Sendable (UInt32) -> Bool)?
    private let shown = Atomic<Int>(0)

    init(options: TraceOptions, start: UInt64, color: Bool, follows: (@Sendable (UInt32) -> Bool)?) {
        self.options = options
        format = TraceFormat(start: start, color: color)
        self.follows = follows
    }

    var eventsShown: Int { shown.load(ordering: .relaxed) }

    func includes(_ e: Event, guest: String?, device: String?, model: HostModel) -> Bool {
        if let d = options.device, device != d { return false }
        if let g = options.guest, guest != g { return false }
        if let follows {
            return follows(e.tgid) || model.devices.owner(of: e).map(follows) ?? false
        }
        return true
    }

    /// Whether a device belongs in the summary.
    func includes(device address: String, model: HostModel) -> Bool {
        if let d = options.device, address != d { return false }
        let owner = model.devices.devices[address]?.owner
        // named as the event lines name it
        if let g = options.guest, (owner.map(model.guestName(owner:)) ?? "host") != g { return false }
        if let follows { return owner.map(follows) ?? false }
        return true
    }

    func show(_ step: Pipeline.Step, model: HostModel) {
        let e = step.event, guest = step.guest
        guard includes(e, guest: guest, device: step.device, model: model) else { return }
        shown.add(1, ordering: .relaxed)
        if options.json {
            printOut(VMMStepJSON.adding(step.unmask, to: EventJSON.object(e, guest: guest, startNs: format.start)).text + "\n")
        } else {
            printOut(format.line(e, guest: guest, device: step.device) + (step.unmask.map(format.suffix) ?? "") + "\n")
        }
    }

    /// A step of the VMM's own trace; filtered by --device and --guest (it is the followed VMM's).
    func show(_ s: Pipeline.VMMShown) {
        if let d = options.device, s.device != d { return }
        if let g = options.guest, s.guest != g { return }
        shown.add(1, ordering: .relaxed)
        printOut((options.json ? VMMStepJSON.object(s, startNs: format.start).text : format.line(s)) + "\n")
    }

    /// Prints the summary; returns the exit status `--fail-on` asks for (0 when none applies).
    func finish(model: HostModel, lifecycles: Lifecycles, unmasks: GuestUnmasks?, seconds: Double) -> Int32 {
        let include = { self.includes(device: $0, model: model) }
        let summary = TraceSummary(model: model, lifecycles: lifecycles, include: include, seconds: seconds)
        let vmm = UnmaskSummary(unmasks ?? GuestUnmasks(), model: model, include: include)
        printOut(options.json ? vmm.adding(to: summary.json(), startNs: format.start).text + "\n" : summary.text(format, sections: vmm.text(format)))
        return summary.exitStatus(failOn: Set(options.failOn))
    }
}
