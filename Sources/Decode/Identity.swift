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

    public init(tgid: UInt32, name: String, source: Source) {
        self.tgid = tgid
        self.name = name
        self.source = source
    }
}
