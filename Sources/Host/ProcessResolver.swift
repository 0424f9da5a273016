import IrqscopeDecode

/// Names a guest process from /proc and the cgroup tree under `root` (tests pass a fabricated
/// tree). In order: QEMU's `-name`, the libvirt machine scope of its cgroup, the KubeVirt
/// virt-launcher pod it runs in, else its comm and pid.
public struct ProcessResolver: Sendable {
    public var root: String
    private let executables = VMMExecutables()

    public init(root: String = "/") { self.root = root.hasSuffix("/") ? root : root + "/" }

    public func alive(_ tgid: UInt32) -> Bool { fileExists("\(root)proc/\(tgid)") }

    /// Whether the process has a VFIO group or device open: a VMM, before its first VFIO call
    /// returns (what that call does inside the kernel is reported first). Matched anywhere in the
    /// link: a VMM in a chroot shows its /dev from our root (/srv/root/dev/vfio/7), one in another
    /// mount namespace from its devtmpfs mount (/vfio/7).
    public func holdsVFIO(_ tgid: UInt32) -> Bool {
        let fd = "\(root)proc/\(tgid)/fd"
        return listDirectory(fd).contains { (readLink("\(fd)/\($0)") ?? "").contains("/vfio/") }
    }

    /// Who the process is, and which VMM (and version) it runs.
    public func identify(_ tgid: UInt32, comm fallback: String) -> ProcessIdentity {
        var identity = name(tgid, comm: fallback)
        // not argv[0] when exe is closed to us: a chrooted or containerised VMM's path names a
        // file in its root, not ours, and a wrong version is worse than none
        let vmm = executables.identify(exe: "\(root)proc/\(tgid)/exe")
        identity.vmm = vmm?.vmm
        identity.vmmVersion = vmm?.version
        return identity
    }

    private func name(_ tgid: UInt32, comm fallback: String) -> ProcessIdentity {
        let proc = "\(root)proc/\(tgid)/"
        let args = readFile(proc + "cmdline")?.split(separator: "\u{0}").map(String.init) ?? []
        let cgroup = readFile(proc + "cgroup").flatMap(GuestName.cgroupPath)
        let inPod = cgroup.map { GuestName.inKubernetesPod(cgroup: $0) } ?? false

        if let name = GuestName.qemu(args) {
            if inPod, let name = GuestName.kubevirt(domain: name) {
                return ProcessIdentity(tgid: tgid, name: name, source: .kubevirt)
            }
            return ProcessIdentity(tgid: tgid, name: name, source: .qemuName)
        }
        if let cgroup, let name = GuestName.libvirt(cgroup: cgroup) {
            return ProcessIdentity(tgid: tgid, name: name, source: .libvirtScope)
        }
        // a virt-launcher container's view, seen through its root
        if inPod, let host = readFile(proc + "root/etc/hostname").map(trimNewline),
           let name = GuestName.kubevirt(podHostname: host, namespace: readFile(
               proc + "root/var/run/secrets/kubernetes.io/serviceaccount/namespace").map(trimNewline)) {
            return ProcessIdentity(tgid: tgid, name: name, source: .kubevirt)
        }
        let comm = readFile(proc + "comm").map(trimNewline) ?? fallback
        return ProcessIdentity(tgid: tgid, name: "\(comm)-\(tgid)", source: .comm)
    }

    public func pciDeviceExists(_ address: String) -> Bool { fileExists("\(root)sys/bus/pci/devices/\(address)") }

    /// The driver bound to a PCI device, from its sysfs link.
    public func driver(of address: String) -> String? {
        guard let target = readLink("\(root)sys/bus/pci/devices/\(address)/driver") else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    /// The device's legacy INTx line (its irq number), 0 or absent when it has none.
    public func intx(of address: String) -> Int? {
        readFile("\(root)sys/bus/pci/devices/\(address)/irq").flatMap { Int(trimNewline($0)) }.flatMap { $0 > 0 ? $0 : nil }
    }

    /// The handlers (request_irq names) on an irq, comma-joined; "" when it has none.
    public func actions(ofIRQ irq: Int) -> String {
        readFile("\(root)sys/kernel/irq/\(irq)/actions").map(trimNewline) ?? ""
    }
}
