/// The names VMM stacks give a guest, from what /proc shows of its process. Pure: ProcessResolver
/// reads the files.
public enum GuestName {
    /// QEMU's `-name guest=NAME,debug-threads=on` or `-name NAME`. QEMU parses the option as a
    /// QemuOpts list (util/qemu-option.c): a first part without a key is `guest`, ",," is a
    /// literal comma (libvirt escapes a domain name's commas so), and the lists of repeated -name
    /// options merge, the last `guest` winning.
    public static func qemu(_ arguments: [String]) -> String? {
        var name: String?
        for (i, argument) in arguments.enumerated().dropLast() where argument == "-name" || argument == "--name" {
            for (n, part) in qemuOptions(arguments[i + 1]).enumerated() where part.key == "guest" || (n == 0 && part.key == nil) {
                name = part.value
            }
        }
        return name?.isEmpty == false ? name : nil
    }

    /// "key=value" parts, or a bare value (only the first is a value: later ones are flags).
    static func qemuOptions(_ text: String) -> [(key: String?, value: String)] {
        var parts: [(key: String?, value: String)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            var key: String?
            if let end = rest.firstIndex(where: { $0 == "=" || $0 == "," }), rest[end] == "=" {
                key = String(rest[..<end])
                rest = rest[rest.index(after: end)...]
            }
            var value = ""
            while true {
                guard let comma = rest.firstIndex(of: ",") else {
                    value += rest
                    rest = rest[rest.endIndex...]
                    break
                }
                value += rest[..<comma]
                rest = rest[rest.index(after: comma)...]
                guard rest.first == "," else { break }
                value += ","
                rest = rest.dropFirst()
            }
            parts.append((key, value))
        }
        return parts
    }

    /// libvirt's systemd scope in a cgroup path: machine-qemu\x2d<ID>\x2d<NAME>.scope, or the
    /// older machine-qemu\x2d<NAME>.scope. libvirt sanitises and may truncate the name there.
    public static func libvirt(cgroup path: String) -> String? {
        for component in path.split(separator: "/") where component.hasPrefix("machine-qemu") && component.hasSuffix(".scope") {
            var name = unescapeSystemd(component.dropFirst("machine-qemu".count).dropLast(".scope".count))
            guard name.hasPrefix("-") else { continue }
            name.removeFirst()
            if let dash = name.firstIndex(of: "-"), !name[..<dash].isEmpty, name[..<dash].allSatisfy(\.isASCIIDigit) {
                name = String(name[name.index(after: dash)...])
            }
            return name.isEmpty ? nil : name
        }
        return nil
    }

    /// systemd's unit-name escaping undone ("\x2d" is '-'), byte by byte: an escaped UTF-8
    /// character comes back whole. A broken escape stays as it is.
    static func unescapeSystemd(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var rest = s.utf8[...]
        while let c = rest.first {
            let hex = rest.dropFirst(2).prefix(2)
            if c == UInt8(ascii: "\\"), rest.dropFirst().first == UInt8(ascii: "x"), hex.count == 2,
               let high = hexValue(hex.first!), let low = hexValue(hex.last!) {
                bytes.append(high << 4 | low)
                rest = rest.dropFirst(4)
            } else {
                bytes.append(c)
                rest = rest.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The cgroup path in /proc/PID/cgroup: v2's ("0::/path"), else the systemd hierarchy's
    /// (name=systemd) on v1.
    public static func cgroupPath(_ text: String) -> String? {
        let lines = text.split(separator: "\n")
        let line = lines.first { $0.hasPrefix("0::") } ?? lines.first { $0.contains(":name=systemd:") }
        // hierarchy-ID:controllers:path, the controllers empty on v2 and the path free to hold ':'
        return line.flatMap { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).last.map(String.init) }
    }

    /// Whether a cgroup is a kubelet pod's: kubepods-<qos>-pod<UID>.slice (systemd driver), or
    /// .../pod<UID>/ (cgroupfs driver), under kubepods.
    public static func inKubernetesPod(cgroup path: String) -> Bool {
        path.contains("kubepods") && path.split(separator: "/").contains { component in
            component.hasPrefix("pod") || (component.contains("-pod") && component.hasSuffix(".slice"))
        }
    }

    /// KubeVirt names the libvirt domain <namespace>_<vmi>: "namespace/vmi". Neither may hold
    /// '_' (both are DNS names), so the first one splits them.
    public static func kubevirt(domain: String) -> String? {
        guard let underscore = domain.firstIndex(of: "_") else { return nil }
        let namespace = domain[..<underscore], vmi = domain[domain.index(after: underscore)...]
        return namespace.isEmpty || vmi.isEmpty ? nil : "\(namespace)/\(vmi)"
    }

    /// A virt-launcher pod's hostname, virt-launcher-<vmi>-<5 random>, and the namespace its
    /// service account directory holds (absent when unreadable): "namespace/vmi", or "vmi".
    public static func kubevirt(podHostname host: String, namespace: String?) -> String? {
        let prefix = "virt-launcher-"
        guard host.hasPrefix(prefix), let dash = host.lastIndex(of: "-") else { return nil }
        let start = host.index(host.startIndex, offsetBy: prefix.count)
        guard start < dash else { return nil }
        let vmi = host[start..<dash]
        guard let namespace, !namespace.isEmpty else { return String(vmi) }
        return "\(namespace)/\(vmi)"
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
