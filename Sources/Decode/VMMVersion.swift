/// The VMM a guest runs in and its version, as read from the VMM's executable.
public enum VMMVersion {
    /// What every QEMU system emulator's `version()` prints, one string literal in its .rodata:
    /// "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright ...".
    public static let qemuBanner = Array("QEMU emulator version ".utf8)

    /// The version after the banner: its leading dotted numbers ("7.2.22", "10.0.2"), the distro's
    /// suffix dropped so the label stays one value per release. nil when no number follows.
    public static func qemu(afterBanner bytes: some Collection<UInt8>) -> String? {
        var out = "", dots = 0
        for b in bytes.prefix(32) {
            if b >= 0x30 && b <= 0x39 {
                out.append(Character(UnicodeScalar(b)))
            } else if b == 0x2E, !out.isEmpty, out.last != ".", dots < 3 {
                out.append(".")
                dots += 1
            } else {
                break
            }
        }
        while out.last == "." { out.removeLast() }
        return out.isEmpty ? nil : out
    }

    /// Numeric parts of a version, for ordering ("8.2.0" -> [8, 2, 0]); nil for anything else.
    public static func parts(_ version: String) -> [Int]? {
        let p = version.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard !p.isEmpty, p.allSatisfy({ $0 != nil }) else { return nil }
        return p.map { $0! }
    }

    /// a < b by numeric parts, missing parts as 0 ("8.2" == "8.2.0").
    public static func less(_ a: [Int], _ b: [Int]) -> Bool {
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return x < y }
        }
        return false
    }
}
