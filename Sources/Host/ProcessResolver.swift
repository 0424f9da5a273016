import IrqscopeDecode

/// Names a guest process from /proc and the cgroup tree under `root` (tests pass a fabricated
/// tree). In order: QEMU's `-name`, the libvirt machine scope of its cgroup, the KubeVirt
/// virt-launcher pod it runs in, else its comm and pid.
public struct ProcessResolver: Sendable {
    public var root: String

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

    public func identify(_ tgid: UInt32, comm fallback: String) -> ProcessIdentity {
        let proc = "\(root)proc/\(tgid)/"
        let args = readFile(proc + "cmdline")?.split(separator: "\u{0}").map(String.init) ?? []
        let cgroup = readFile(proc + "cgroup").flatMap(Self.cgroupPath)
        let inPod = cgroup.map(Self.inKubernetesPod) ?? false

        if let name = Self.qemuName(args) {
            // KubeVirt names the libvirt domain <namespace>_<vmi>
            if inPod, let underscore = name.firstIndex(of: "_") {
                let vmi = name[name.index(after: underscore)...]
                return ProcessIdentity(tgid: tgid, name: "\(name[..<underscore])/\(vmi)", source: .kubevirt)
            }
            return ProcessIdentity(tgid: tgid, name: name, source: .qemuName)
        }
        if let cgroup, let name = Self.libvirtMachine(cgroup) {
            return ProcessIdentity(tgid: tgid, name: name, source: .libvirtScope)
        }
        if inPod, let name = kubevirtName(proc) {
            return ProcessIdentity(tgid: tgid, name: name, source: .kubevirt)
        }
        let comm = readFile(proc + "comm").map(trimNewline) ?? fallback
        return ProcessIdentity(tgid: tgid, name: "\(comm)-\(tgid)", source: .comm)
    }

    /// QEMU's `-name guest=NAME,debug-threads=on` or `-name NAME`.
    static func qemuName(_ args: [String]) -> String? {
        guard let i = args.firstIndex(where: { $0 == "-name" || $0 == "--name" }), i + 1 < args.count else { return nil }
        let value = args[i + 1]
        for part in value.split(separator: ",") where part.hasPrefix("guest=") {
            return String(part.dropFirst("guest=".count))
        }
        let first = value.split(separator: ",").first.map(String.init) ?? value
        return first.contains("=") || first.isEmpty ? nil : first
    }

    /// The cgroup v2 path ("0::/path"), or the systemd (name=systemd) hierarchy's on v1.
    static func cgroupPath(_ text: String) -> String? {
        let lines = text.split(separator: "\n")
        let line = lines.first { $0.hasPrefix("0::") } ?? lines.first { $0.contains(":name=systemd:") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 2).last.map(String.init) }
    }

    /// libvirt's systemd scope: machine-qemu\x2d<ID>\x2d<NAME>.scope, or the older
    /// machine-qemu\x2d<NAME>.scope. libvirt sanitises and may truncate the name there.
    static func libvirtMachine(_ path: String) -> String? {
        for component in path.split(separator: "/") where component.hasPrefix("machine-qemu") && component.hasSuffix(".scope") {
            var name = unescapeSystemd(String(component.dropFirst("machine-qemu".count).dropLast(".scope".count)))
            guard name.hasPrefix("-") else { continue }
            name.removeFirst()
            if let dash = name.firstIndex(of: "-"), !name[..<dash].isEmpty, name[..<dash].allSatisfy(\.isNumber) {
                name = String(name[name.index(after: dash)...])
            }
            return name.isEmpty ? nil : name
        }
        return nil
    }

    /// Whether a cgroup is a kubelet pod's: kubepods-<qos>-pod<UID>.slice (systemd driver), or
    /// .../pod<UID>/ (cgroupfs driver), under kubepods.
    static func inKubernetesPod(_ path: String) -> Bool {
        path.contains("kubepods") && path.split(separator: "/").contains { component in
            component.hasPrefix("pod") || (component.contains("-pod") && component.hasSuffix(".slice"))
        }
    }

    /// A virt-launcher container's view: its hostname is the pod name,
    /// virt-launcher-<vmi>-<5 random>, and the service account directory holds the namespace.
    func kubevirtName(_ proc: String) -> String? {
        guard let host = readFile(proc + "root/etc/hostname").map(trimNewline),
              host.hasPrefix("virt-launcher-"), let dash = host.lastIndex(of: "-") else { return nil }
        let vmi = String(host[host.index(host.startIndex, offsetBy: "virt-launcher-".count)..<dash])
        guard !vmi.isEmpty else { return nil }
        let namespace = readFile(proc + "root/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .map(trimNewline)
        return namespace.map { "\($0)/\(vmi)" } ?? vmi
    }

    static func unescapeSystemd(_ s: String) -> String {
        var out = ""
        var chars = Array(s)[...]
        while let c = chars.first {
            if c == "\\", chars.count >= 4, chars[chars.startIndex + 1] == "x",
               let v = UInt8(String(chars[(chars.startIndex + 2)...(chars.startIndex + 3)]), radix: 16) {
                out.append(Character(UnicodeScalar(v)))
                chars = chars.dropFirst(4)
            } else {
                out.append(c)
                chars = chars.dropFirst()
            }
        }
        return out
    }

    /// The driver bound to a PCI device, from its sysfs link.
    public func driver(of address: String) -> String? {
        guard let target = readLink("\(root)sys/bus/pci/devices/\(address)/driver") else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    /// The device's legacy INTx line (its irq number), 0 or absent when it has none.
    public func intx(of address: String) -> Int? {
        readFile("\(root)sys/bus/pci/devices/\(address)/irq").flatMap { Int(trimNewline($0)) }.flatMap { $0 > 0 ? $0 : nil }
    }
}
