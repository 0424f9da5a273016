import Glibc
import IrqscopeDecode

/// Names a guest process from /proc under `root` (tests pass a fabricated tree).
public struct ProcessResolver: Sendable {
    public var root: String

    public init(root: String = "/") { self.root = root.hasSuffix("/") ? root : root + "/" }

    public func alive(_ tgid: UInt32) -> Bool { fileExists("\(root)proc/\(tgid)") }

    public func identify(_ tgid: UInt32, comm fallback: String) -> ProcessIdentity {
        if let cmdline = readFile("\(root)proc/\(tgid)/cmdline") {
            let args = cmdline.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            if let name = Self.qemuName(args) { return ProcessIdentity(tgid: tgid, name: name, source: .qemuName) }
        }
        let comm = readFile("\(root)proc/\(tgid)/comm").map { SysfsIRQs.trimNewline($0) } ?? fallback
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

    /// The driver bound to a PCI device, from its sysfs link.
    public func driver(of address: String) -> String? {
        guard let target = readLink("\(root)sys/bus/pci/devices/\(address)/driver") else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }
}

func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
