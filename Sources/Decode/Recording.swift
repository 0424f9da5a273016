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

    /// The bytes a recording starts with.
    public static var header: [UInt8] { magic + le32(UInt32(IRQSCOPE_ABI_VERSION)) }

    /// A ring-buffer record as a recording's record.
    public static func encode(event record: some Collection<UInt8>) -> [UInt8] {
        le32(kindEvent) + le32(UInt32(record.count)) + record
    }

    /// An annotation as a recording's record. A value's line breaks become spaces: the payload is
    /// one `key=value` per line.
    public static func encode(_ annotation: Annotation) -> [UInt8] {
        var text: [UInt8] = []
        for (i, (key, value)) in annotation.fields.enumerated() {
            if i > 0 { text.append(0x0a) }
            text += Array(key.utf8) + [0x3d] + value.utf8.map { $0 == 0x0a || $0 == 0x0d ? 0x20 : $0 }
        }
        return le32(kindAnnotation) + le32(UInt32(text.count)) + text
    }

    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

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

        /// Split as bytes, not Characters: "\r\n" or a combining mark after "=" is one Character,
        /// and a VMM's name may hold either.
        private func fields(_ payload: ArraySlice<UInt8>) throws(AnnotationError) -> [String: String] {
            var fields: [String: String] = [:]
            for line in payload.split(separator: 0x0a) {
                guard let eq = line.firstIndex(of: 0x3d) else { throw AnnotationError("a line without '='") }
                fields[String(decoding: line[..<eq], as: UTF8.self)] = String(decoding: line[(eq + 1)...], as: UTF8.self)
            }
            return fields
        }

        /// Where the stream, if it ended now, would end inside a header or a record.
        public var truncation: String? {
            if !headerRead {
                return buffer.isEmpty && offset == 0 ? "an empty recording (its writer was killed before its first write?)"
                    : "not an irqscope recording (bad magic)"
            }
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

public struct RecordingError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

