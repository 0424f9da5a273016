import Glibc
import IrqscopeDecode
import Synchronization

/// Which VMM program a process runs and its version, read from the executable itself through
/// /proc/PID/exe (the binary it started from, even if a package upgrade replaced the path
/// since). Read once per executable (device, inode): a host runs many guests of a few builds.
public final class VMMExecutables: Sendable {
    public struct Found: Sendable, Equatable {
        public var vmm: String
        public var version: String?
    }

    private let cache = Mutex<[Key: Found?]>([:])
    private struct Key: Hashable { var dev: UInt64, inode: UInt64 }

    public init() {}

    /// nil when the executable cannot be opened: the process is gone, or irqscope may not
    /// ptrace-read it (another user's process, or a root one whose capabilities exceed the
    /// exporter's once it dropped its own; CAP_SYS_PTRACE allows it).
    public func identify(exe path: String) -> Found? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let key = Key(dev: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        if let known = cache.withLock({ $0[key] }) { return known }
        let found: Found?
        if let version = Self.qemuVersion(fd: fd) {
            found = Found(vmm: "qemu", version: version)
        } else {
            // not QEMU: the program's name, without a version (" (deleted)": replaced since)
            var name = String((readLink(path) ?? path).split(separator: "/").last ?? "")
            if name.hasSuffix(" (deleted)") { name.removeLast(" (deleted)".count) }
            found = name.isEmpty ? nil : Found(vmm: name, version: nil)
        }
        cache.withLock { $0[key] = found }
        return found
    }

    /// The largest section scanned: QEMU's .rodata is 1.8 MiB (7.2) to a few MiB.
    static let scanLimit = 32 << 20

    /// QEMU's banner in the ELF's .rodata. Only the section headers and that section are read
    /// (in 1 MiB chunks), never the whole binary.
    static func qemuVersion(fd: Int32) -> String? {
        guard let (offset, size) = rodata(fd: fd) else { return nil }
        let needle = VMMVersion.qemuBanner, tail = 32
        let chunk = 1 << 20, end = offset + min(size, scanLimit)
        var at = offset
        var buffer = [UInt8](repeating: 0, count: chunk + needle.count + tail)
        while at < end {
            let want = min(buffer.count, end - at)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(at)) }
            guard n > 0 else { return nil }
            let bytes = buffer[0..<n]
            if let i = firstIndex(of: needle, in: bytes) {
                return VMMVersion.qemu(afterBanner: bytes[(i + needle.count)...])
            }
            // the next chunk overlaps this one's end, so a banner split across them is found
            at += max(1, n - needle.count - tail)
            if n < want { break }
        }
        return nil
    }

    /// File offset and size of the `.rodata` section of a 64-bit little-endian ELF.
    static func rodata(fd: Int32) -> (Int, Int)? {
        func read(_ count: Int, at offset: Int) -> [UInt8]? {
            guard count > 0, count <= 1 << 20, offset >= 0 else { return nil }
            var b = [UInt8](repeating: 0, count: count)
            let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? b : nil
        }
        func le(_ b: [UInt8], _ at: Int, _ width: Int) -> Int {
            (0..<width).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) }
        }
        guard let h = read(64, at: 0), h[0..<4] == [0x7F, 0x45, 0x4C, 0x46], h[4] == 2, h[5] == 1 else { return nil }
        let shoff = le(h, 0x28, 8), shentsize = le(h, 0x3A, 2), shnum = le(h, 0x3C, 2), shstrndx = le(h, 0x3E, 2)
        guard shentsize >= 64, shnum > 0, shstrndx < shnum, let table = read(shentsize * shnum, at: shoff) else { return nil }
        func section(_ i: Int) -> (name: Int, offset: Int, size: Int) {
            let s = i * shentsize
            return (le(table, s, 4), le(table, s + 0x18, 8), le(table, s + 0x20, 8))
        }
        let strings = section(shstrndx)
        guard let names = read(min(strings.size, 1 << 20), at: strings.offset) else { return nil }
        let wanted = Array(".rodata".utf8) + [0]
        for i in 0..<shnum {
            let s = section(i)
            if s.name + wanted.count <= names.count, names[s.name..<(s.name + wanted.count)].elementsEqual(wanted) {
                return (s.offset, s.size)
            }
        }
        return nil
    }

    /// memchr for the first byte, memcmp for the rest (Glibc's Swift module lacks memmem).
    static func firstIndex(of needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
        hay.withUnsafeBytes { h -> Int? in
            needle.withUnsafeBytes { n -> Int? in
                guard let base = h.baseAddress, let first = needle.first, h.count >= n.count else { return nil }
                var at = 0
                while at + n.count <= h.count, let hit = memchr(base + at, Int32(first), h.count - n.count + 1 - at) {
                    let i = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + i, n.baseAddress!, n.count) == 0 { return hay.startIndex + i }
                    at = i + 1
                }
                return nil
            }
        }
    }
}
