/// Who a process is, as far as guests go: the name an operator knows it by, and where that
/// name came from.
public struct ProcessIdentity: Sendable, Equatable {
    public enum Source: String, Sendable {
        case qemuName = "qemu-name"       // -name guest=NAME / -name NAME on the command line
        case libvirtScope = "libvirt-scope" // machine-qemu\x2dN\x2dNAME.scope in the cgroup path
        case kubevirt = "kubevirt"        // virt-launcher pod: namespace/vmi
        case comm = "comm"                // nothing better: "comm-pid"
    }

    public var tgid: UInt32
    public var name: String
    public var source: Source
    /// The VMM program ("qemu", else the executable's name) and its version, read from its
    /// executable; nil when unknown (not readable, or recorded before irqscope read them).
    public var vmm: String?
    public var vmmVersion: String?

    public init(tgid: UInt32, name: String, source: Source, vmm: String? = nil, vmmVersion: String? = nil) {
        self.tgid = tgid
        self.name = name
        self.source = source
        self.vmm = vmm
        self.vmmVersion = vmmVersion
    }
}
