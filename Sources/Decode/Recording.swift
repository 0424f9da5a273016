import Glibc
import IrqscopeABI

/// A recording: the raw ring-buffer records of a run, plus annotations (process names,
/// device drivers) that replay needs and that only the recording machine could read.
///
/// Layout: 16-byte magic, u32 ABI version, then records of u32 kind, u32 length, payload.
/// Kind 1 is a `struct irqscope_event` exactly as the kernel wrote it; kind 2 an annotation
/// as UTF-8 `key=value` lines. Little-endian, like every machine irqscope runs on.
public enum Recording {
    static let magic: [UInt8] = Array("IRQSCOPE-RECORD\u{0}".utf8)
    static let kindEvent: UInt32 = 1
    static let kindAnnotation: UInt32 = 2

    public enum Entry: Sendable, Equatable {
        case event(Event)
        case annotation([String: String])
    }

    /// Parses a whole recording. Throws on a bad magic, another ABI version, or a truncated
    /// or undecodable record, naming the byte offset.
    public static func read(_ bytes: [UInt8]) throws(RecordingError) -> [Entry] {
        guard bytes.count >= magic.count + 4, Array(bytes[0..<magic.count]) == magic else {
            throw RecordingError("not an irqscope recording (bad magic)")
        }
        let version = load32(bytes, magic.count)
        guard version == UInt32(IRQSCOPE_ABI_VERSION) else {
            throw RecordingError("recording is ABI version \(version), this irqscope reads version \(IRQSCOPE_ABI_VERSION)")
        }
        var entries: [Entry] = []
        var offset = magic.count + 4
        while offset < bytes.count {
            guard offset + 8 <= bytes.count else { throw RecordingError("truncated record header at byte \(offset)") }
            let kind = load32(bytes, offset), length = Int(load32(bytes, offset + 4))
            let start = offset + 8
            guard length <= bytes.count - start else { throw RecordingError("truncated record at byte \(offset)") }
            switch kind {
            case kindEvent:
                do {
                    entries.append(.event(try bytes[start..<(start + length)].withUnsafeBytes { try Event(record: $0) }))
                } catch {
                    throw RecordingError("record at byte \(offset): \(error)")
                }
            case kindAnnotation:
                var fields: [String: String] = [:]
                for line in String(decoding: bytes[start..<(start + length)], as: UTF8.self).split(separator: "\n") {
                    guard let eq = line.firstIndex(of: "=") else { throw RecordingError("bad annotation at byte \(offset)") }
                    fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
                }
                entries.append(.annotation(fields))
            default:
                throw RecordingError("unknown record kind \(kind) at byte \(offset)")
            }
            offset = start + length
        }
        return entries
    }

    public static func read(path: String) throws(RecordingError) -> [Entry] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordingError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw RecordingError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return try read(bytes)
    }

    static func load32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}

public struct RecordingError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Appends to a recording file. Not thread-safe: callers serialise.
public final class RecordingWriter {
    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String) throws(RecordingError) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecordingError("cannot create \(path): \(String(cString: strerror(errno)))") }
        buffer = Recording.magic
        append32(UInt32(IRQSCOPE_ABI_VERSION))
    }

    deinit { close() }

    public func write(event record: [UInt8]) {
        append32(Recording.kindEvent)
        append32(UInt32(record.count))
        buffer += record
        if buffer.count > 1 << 16 { flush() }
    }

    public func annotate(_ fields: [(String, String)]) {
        let text = fields.map { "\($0.0)=\($0.1.replacingNewlines())" }.joined(separator: "\n")
        append32(Recording.kindAnnotation)
        append32(UInt32(text.utf8.count))
        buffer += Array(text.utf8)
    }

    public func flush() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private var closed = false
    public func close() {
        guard !closed else { return }
        closed = true
        flush()
        Glibc.close(fd)
    }

    private func append32(_ v: UInt32) {
        buffer += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }
}

extension String {
    func replacingNewlines() -> String { String(map { $0 == "\n" ? " " : $0 }) }
}
