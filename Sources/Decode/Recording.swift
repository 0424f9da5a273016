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

    /// Annotations are a few key=value lines; a delivery snapshot of 32768 irqs takes about 1.6
    /// MiB. A longer record is not one irqscope wrote, and is refused before it is buffered.
    public static let maxAnnotationBytes = 16 << 20

    /// Parses a whole recording. Throws on a bad magic, another ABI version, or a truncated
    /// or undecodable record, naming the byte offset.
    public static func read(_ bytes: [UInt8]) throws(RecordingError) -> [Entry] {
        var parser = Parser()
        var entries = try parser.feed(bytes[...])
        entries += try parser.finish()
        return entries
    }

    /// Reads a recording as a stream, checking each record as it arrives: a file that is not a
    /// recording (or /dev/zero) fails on its first bytes, never after being read whole.
    public static func read(path: String) throws(RecordingError) -> [Entry] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordingError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var parser = Parser()
        var entries: [Entry] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw RecordingError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            entries += try parser.feed(chunk[0..<n])
        }
        return entries + (try parser.finish())
    }

    /// The one decoder of recordings: bytes in, in any pieces; entries out as soon as complete.
    public struct Parser: Sendable {
        private var buffer: [UInt8] = []
        /// Stream offset of `buffer[0]`, for error messages.
        private var offset = 0
        private var headerRead = false

        public init() {}

        public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(RecordingError) -> [Entry] {
            buffer += bytes
            var entries: [Entry] = []
            var at = 0
            defer {
                buffer.removeFirst(at)
                offset += at
            }
            if !headerRead {
                // refuse as soon as the bytes seen differ from the magic
                let seen = min(buffer.count, magic.count)
                guard buffer[0..<seen].elementsEqual(magic[0..<seen]) else {
                    throw RecordingError("not an irqscope recording (bad magic)")
                }
                guard buffer.count >= magic.count + 4 else { return [] }
                let version = load32(buffer, magic.count)
                guard version == UInt32(IRQSCOPE_ABI_VERSION) else {
                    throw RecordingError("recording is ABI version \(version), this irqscope reads version \(IRQSCOPE_ABI_VERSION)")
                }
                headerRead = true
                at = magic.count + 4
            }
            while buffer.count - at >= 8 {
                let kind = load32(buffer, at), length = Int(load32(buffer, at + 4))
                let here = offset + at
                switch kind {
                case kindEvent where length != Event.recordSize:
                    throw RecordingError("record at byte \(here): event of \(length) bytes, expected \(Event.recordSize)")
                case kindAnnotation where length > maxAnnotationBytes:
                    throw RecordingError("record at byte \(here): annotation of \(length) bytes (at most \(maxAnnotationBytes))")
                case kindEvent, kindAnnotation:
                    break
                default:
                    throw RecordingError("unknown record kind \(kind) at byte \(here)")
                }
                let start = at + 8
                guard buffer.count - start >= length else { break }
                let payload = buffer[start..<(start + length)]
                if kind == kindEvent {
                    do {
                        entries.append(.event(try payload.withUnsafeBytes { try Event(record: $0) }))
                    } catch {
                        throw RecordingError("record at byte \(here): \(error)")
                    }
                } else {
                    var fields: [String: String] = [:]
                    for line in String(decoding: payload, as: UTF8.self).split(separator: "\n") {
                        guard let eq = line.firstIndex(of: "=") else { throw RecordingError("bad annotation at byte \(here)") }
                        fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
                    }
                    entries.append(.annotation(fields))
                }
                at = start + length
            }
            return entries
        }

        /// The end of the stream: whatever is left is a truncated header or record.
        public func finish() throws(RecordingError) -> [Entry] {
            if !headerRead { throw RecordingError("not an irqscope recording (bad magic)") }
            if buffer.count >= 8 { throw RecordingError("truncated record at byte \(offset)") }
            if !buffer.isEmpty { throw RecordingError("truncated record header at byte \(offset)") }
            return []
        }
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

    /// Run as root, irqscope must not write through a symbolic link someone else planted, nor
    /// into a device or a file another irqscope is recording to: the file is opened without
    /// following a link, locked, checked to be a regular file, and only then emptied.
    public init(path: String) throws(RecordingError) {
        // checked on a local: once self.fd is set, a throw would run deinit and close it again
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let why = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
            throw RecordingError("cannot record to \(path): \(why)")
        }
        var st = stat()
        if fstat(fd, &st) != 0 || st.st_mode & S_IFMT != S_IFREG {
            Glibc.close(fd)
            throw RecordingError("cannot record to \(path): not a regular file")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            Glibc.close(fd)
            throw RecordingError("cannot record to \(path): another process is recording to it")
        }
        _ = ftruncate(fd, 0)
        self.fd = fd
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
