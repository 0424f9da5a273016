import IrqscopeDecode

/// Everything irqscope knows about this host, built only from decoded kernel data and the
/// annotations that name processes and drivers (live from /proc and sysfs, or from a recording).
public struct HostModel: Sendable {
    public private(set) var delivery = DeliveryCounters()
    public private(set) var vectors = VectorSpace()
    public private(set) var devices = Devices()
    public private(set) var processes: [UInt32: ProcessIdentity] = [:]
    public private(set) var drivers: [String: String] = [:]
    public private(set) var eventsReceived: UInt64 = 0
    public private(set) var eventsUndecodable: UInt64 = 0
    /// Kernel-side counters, as of the last snapshot.
    public private(set) var kernel = DeliverySnapshot()

    public init() {}

    public mutating func apply(_ event: Event) {
        eventsReceived += 1
        vectors.apply(event)
        devices.apply(event)
    }

    public mutating func noteUndecodable() {
        eventsReceived += 1
        eventsUndecodable += 1
    }

    public mutating func note(process: ProcessIdentity) { processes[process.tgid] = process }

    public mutating func note(driver: String?, of address: String) { drivers[address] = driver }

    /// Applies an annotation from a recording (see `Recording`).
    public mutating func apply(annotation a: [String: String]) {
        switch a["type"] {
        case "process":
            guard let tgid = a["tgid"].flatMap(UInt32.init), let name = a["name"],
                  let source = a["source"].flatMap(ProcessIdentity.Source.init) else { return }
            note(process: ProcessIdentity(tgid: tgid, name: name, source: source))
        case "device":
            guard let address = a["address"] else { return }
            note(driver: a["driver"], of: address)
        case "exit":
            guard let tgid = a["tgid"].flatMap(UInt32.init) else { return }
            processExited(tgid)
        default:
            break
        }
    }

    public mutating func update(_ snapshot: DeliverySnapshot, irqs: [Int: IRQInfo]) {
        kernel = snapshot
        delivery.update(kernel: snapshot.irqs, irqs: irqs)
    }

    /// Processes that own devices now.
    public var owners: Set<UInt32> { Set(devices.devices.values.compactMap(\.owner)) }

    /// Every process the model holds state for: owners, and processes it has named.
    public var trackedProcesses: Set<UInt32> { owners.union(processes.keys) }

    /// Drops what belonged to a process that has exited: no stale series, bounded memory.
    public mutating func processExited(_ tgid: UInt32) {
        devices.retainOwners { $0 != tgid }
        processes[tgid] = nil
    }
}
