import Glibc
import IrqscopeABI

/// A recording: the raw ring-buffer records of a run, plus annotations (process names,
/// device drivers, counter snapshots) that replay needs and that only the recording machine
/// could read.
///
/// Layout: 16-byte magic, u32 ABI version, then records of u32 kind, u32 length, payload.
/// Kind 1 is a `struct irqscope_event` exactly as the kernel wrote it; kind 2 an `Annotation`
/// as UTF-8 `key=value` lines. Little-endian, like every machine irqscope runs on. A writer
/// that stops cleanly ends with an `end` annotation, so a reader can tell a whole recording
/// from one whose writer was killed.
public enum Recording {
    static let magic: [UInt8] = Array("IRQSCOPE-RECORD\u{0}".utf8)
    static let kindEvent: UInt32 = 1
    static let kindAnnotation: UInt32 = 2

    public enum Entry: Sendable, Equatable {
        case event(Event)
        case annotation(Annotation)
    }

    /// Annotations are a few key=value lines; a delivery snapshot of 32768 irqs takes about 1.6
    /// MiB. A longer record is not one irqscope wrote, and is refused before it is buffered.
    public static let maxAnnotationBytes = 16 << 20

    /// Parses a whole recording held in memory. Throws on a bad magic, another ABI version, or
    /// a truncated or undecodable record, naming the byte offset.
    public static func read(_ bytes: [UInt8]) throws(RecordingError) -> [Entry] {
        var parser = Parser()
        let entries = try parser.feed(bytes[...])
        if let cut = parser.truncation { throw RecordingError(cut) }
        return entries
    }

    /// The one decoder of recordings: bytes in, in any pieces; entries out as soon as complete.
    public struct Parser: Sendable {
        private var buffer: [UInt8] = []
        /// Stream offset of `buffer[0]`, for error messages.
        private var offset = 0
        private var headerRead = false
        public private(set) var records = 0

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
                do {
                    if kind == kindEvent {
                        entries.append(.event(try payload.withUnsafeBytes { try Event(record: $0) }))
                    } else {
                        entries.append(.annotation(try Annotation(fields: try fields(payload))))
                    }
                } catch {
                    throw RecordingError("record at byte \(here): \(error)")
                }
                records += 1
                at = start + length
            }
            return entries
        }

        private func fields(_ payload: ArraySlice<UInt8>) throws(AnnotationError) -> [String: String] {
            var fields: [String: String] = [:]
            for line in String(decoding: payload, as: UTF8.self).split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { throw AnnotationError("a line without '='") }
                fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            return fields
        }

        /// Where the stream, if it ended now, would end inside a header or a record.
        public var truncation: String? {
            if !headerRead { return "not an irqscope recording (bad magic)" }
            if buffer.count >= 8 {
                return "truncated record at byte \(offset): \(buffer.count - 8) of its \(load32(buffer, 4)) bytes"
            }
            if !buffer.isEmpty { return "truncated record header at byte \(offset)" }
            return nil
        }

        public var bytesParsed: Int { offset }
    }

    static func load32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}

/// Reads a recording file as a stream: memory stays that of one chunk and one record, whatever
/// the file's size. A file that is not a recording (or /dev/zero) fails on its first bytes.
public struct RecordingReader {
    private let fd: Int32
    private let path: String
    private var parser = Recording.Parser()
    private var pending: [Recording.Entry] = []
    private var cursor = 0
    private var ended = false
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)
    /// Set once the whole file is read: whether it stopped short of a clean end, and where.
    public private(set) var incomplete: String?

    public init(path: String) throws(RecordingError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecordingError("cannot open \(path): \(String(cString: strerror(errno)))") }
        self.path = path
    }

    public func close() { Glibc.close(fd) }

    /// The next entry; nil at the end of the file. A file cut inside a record (its writer killed
    /// mid-write, a copy cut short) ends at its last whole record, and `incomplete` says where.
    public mutating func next() throws(RecordingError) -> Recording.Entry? {
        while cursor == pending.count {
            if ended { return nil }
            pending.removeAll(keepingCapacity: true)
            cursor = 0
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw RecordingError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 {
                ended = true
                try finish()
                return nil
            }
            pending = try parser.feed(chunk[0..<n])
            if let last = pending.last { endsClean = last == .annotation(.end) }
        }
        defer { cursor += 1 }
        return pending[cursor]
    }

    private var endsClean = false

    private mutating func finish() throws(RecordingError) {
        if let cut = parser.truncation, parser.bytesParsed == 0 { throw RecordingError(cut) }
        if let cut = parser.truncation {
            incomplete = "\(cut); replayed the \(parser.records) whole records before it"
        } else if !endsClean {
            incomplete = "no end mark after its \(parser.records) records (\(parser.bytesParsed) bytes): its writer was killed, or is still writing"
        }
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

    /// Why writing stopped (a full disk, an I/O error): the recording ends at the last record
    /// written before it, and nothing more is appended.
    public private(set) var failure: RecordingError?
    private var written = 0
    private var lastFlush = coarseSeconds()

    public func write(event record: [UInt8]) {
        append32(Recording.kindEvent)
        append32(UInt32(record.count))
        buffer += record
        flushIfDue()
    }

    public func write(_ annotation: Annotation) {
        let text = annotation.fields.map { "\($0.0)=\($0.1.replacingNewlines())" }.joined(separator: "\n")
        append32(Recording.kindAnnotation)
        append32(UInt32(text.utf8.count))
        buffer += Array(text.utf8)
        flushIfDue()
    }

    /// Written at least each second while records come, and by trace's looks (each 100 ms) when
    /// none do: a killed trace loses at most its last second.
    public func flushIfDue() {
        if buffer.count > 1 << 16 || coarseSeconds() != lastFlush { flush() }
    }

    public func flush() {
        defer { buffer.removeAll(keepingCapacity: true) }
        lastFlush = coarseSeconds()
        guard failure == nil else { return }
        var offset = 0
        while offset < buffer.count {
            let n = buffer[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let why = n < 0 ? String(cString: strerror(errno)) : "nothing written"
                // a half-written record would make the rest unreadable: cut back to the last whole one
                _ = ftruncate(fd, off_t(written))
                failure = RecordingError("cannot write the recording at byte \(written): \(why); it ends there")
                return
            }
            offset += n
        }
        written += buffer.count
    }

    private var closed = false
    /// Ends the recording with its end mark, so that a reader knows it is whole.
    public func close() {
        guard !closed else { return }
        closed = true
        write(.end)
        flush()
        Glibc.close(fd)
    }

    private func append32(_ v: UInt32) {
        buffer += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }
}

private func coarseSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    return ts.tv_sec
}

extension String {
    func replacingNewlines() -> String { String(map { $0 == "\n" ? " " : $0 }) }
}
