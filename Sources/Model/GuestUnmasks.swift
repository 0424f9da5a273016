import IrqscopeDecode

/// The whole path of an MSI-X vector: the guest unmasks vector N, its VMM traps that and puts the
/// vector to use (QEMU's vfio_msix_vector_do_use), and the host backs it (request_irq of
/// vfio-msix[N](BDF) returns). Kept per device and vector; paired by time, not by arrival: the
/// VMM's log and the kernel's ring buffer are read by two threads.
public struct GuestUnmasks: Sendable {
    public struct Unmask: Sendable, Equatable {
        public var device: String
        public var vector: Int
        /// When the VMM put the vector to use (monotonic ns).
        public var unmasked: UInt64
        /// When the host's request_irq for it returned: the first after `unmasked` and before the
        /// VMM's next step on this vector (a release re-requests the irq for the VMM's own eventfd).
        public var ready: UInt64?
        public var irq: Int?

        public var latency: UInt64? { ready.map { $0 &- unmasked } }
    }

    struct Key: Hashable { var device: String; var vector: Int }

    private var uses: [Key: [UInt64]] = [:]
    private var releases: [Key: [UInt64]] = [:]
    private var requests: [Key: [(at: UInt64, irq: Int)]] = [:]

    public init() {}

    /// The VMM's step; the unmask it completes when the host's request came first.
    @discardableResult
    public mutating func apply(_ s: VMMStep) -> Unmask? {
        guard let device = s.line.device, let vector = s.line.vector else { return nil }
        let key = Key(device: device, vector: vector)
        if s.line.name == "vfio_msix_vector_do_use" {
            uses[key, default: []].append(s.at)
            return pairs(key).first { $0.unmasked == s.at && $0.ready != nil }
        }
        releases[key, default: []].append(s.at)
        return nil
    }

    /// A kernel event; the unmask a successful request_irq of a VFIO MSI-X vector completes.
    @discardableResult
    public mutating func apply(_ e: Event) -> Unmask? {
        guard case .requestIRQ(let name, _) = e.kind, e.result == 0, let irq = e.irq,
              case .vfioMSI(let device, let vector, true) = IRQName(name) else { return nil }
        let key = Key(device: device, vector: vector)
        requests[key, default: []].append((e.timeNs, Int(irq)))
        return pairs(key).first { $0.ready == e.timeNs }
    }

    /// Every unmask seen, by device, then time.
    public var unmasks: [Unmask] {
        uses.keys.flatMap(pairs).sorted { ($0.device, $0.unmasked, $0.vector) < ($1.device, $1.unmasked, $1.vector) }
    }

    private func pairs(_ key: Key) -> [Unmask] {
        let used = (uses[key] ?? []).sorted()
        let steps = (used + (releases[key] ?? [])).sorted()
        let requested = (requests[key] ?? []).sorted { $0.at < $1.at }
        return used.map { at in
            let next = steps.first { $0 > at }
            let r = requested.first { r in r.at >= at && (next.map { r.at < $0 } ?? true) }
            return Unmask(device: key.device, vector: key.vector, unmasked: at, ready: r?.at, irq: r?.irq)
        }
    }
}
