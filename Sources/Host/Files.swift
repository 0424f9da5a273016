import Glibc

// Small files of /proc, sysfs and configuration, read without Foundation. Absence is the common
// case (a process gone, an irq freed between listing and reading): nil or empty, not an error.

public func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// A whole (small, virtual) file as text; nil when it cannot be read.
public func readFile(_ path: String, limit: Int = 1 << 20) -> String? {
    readBytes(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
}

/// A whole (virtual) file's bytes, up to `limit`; nil when it cannot be read.
public func readBytes(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { Glibc.close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue } else { return nil } }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

public func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

public func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// A one-line sysfs or /proc value without its newline.
func trimNewline(_ s: String) -> String {
    var s = Substring(s)
    while s.last == "\n" || s.last == " " { s = s.dropLast() }
    return String(s)
}
