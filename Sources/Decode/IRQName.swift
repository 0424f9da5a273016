/// What an irq's name (request_irq's devname, /sys/kernel/irq/N/actions) says about who asked for
/// it. VFIO names its irqs in drivers/vfio/pci/vfio_pci_intrs.c: "vfio-intx(%s)" and
/// "vfio-msi%s[%d](%s)" ("x" for MSI-X), with pci_name(). Its error and request notifications
/// are eventfds, not irqs, so they have no names here.
public enum IRQName: Equatable, Sendable {
    /// A device's legacy line, passed through to a guest.
    case vfioINTx(device: String)
    /// One MSI or MSI-X vector of a device, passed through to a guest.
    case vfioMSI(device: String, vector: Int, msix: Bool)
    /// VFIO's prefix in a form not known here (a kernel to come, a crafted recording): still a VMM's irq.
    case vfioOther
    /// A host driver's: a name of its own choosing.
    case driver

    public init(_ name: String) {
        guard name.hasPrefix("vfio-") else { self = .driver; return }
        self = Self.vfio(name.dropFirst("vfio-".count)) ?? .vfioOther
    }

    public var isVFIO: Bool { self != .driver }

    /// The PCI device (pci_name()) a VFIO name gives.
    public var device: String? {
        switch self {
        case .vfioINTx(let device), .vfioMSI(let device, _, _): device
        case .vfioOther, .driver: nil
        }
    }

    /// "intx(BDF)", "msi[N](BDF)", "msix[N](BDF)".
    private static func vfio(_ s: Substring) -> IRQName? {
        guard let open = s.firstIndex(of: "("), s.hasSuffix(")") else { return nil }
        let kind = s[..<open]
        let device = String(s[s.index(after: open)..<s.index(before: s.endIndex)])
        // pci_name() is never empty nor parenthesised
        guard !device.isEmpty, !device.contains("("), !device.contains(")") else { return nil }
        if kind == "intx" { return .vfioINTx(device: device) }
        let msix = kind.hasPrefix("msix[")
        guard kind.hasPrefix(msix ? "msix[" : "msi["), kind.hasSuffix("]") else { return nil }
        let digits = kind.dropFirst(msix ? 5 : 4).dropLast()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let vector = Int(digits) else { return nil }
        return .vfioMSI(device: device, vector: vector, msix: msix)
    }
}
