import Glibc
import IrqscopeDecode

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
        buffer = Recording.header
    }

    deinit { close() }

    /// Why writing stopped (a full disk, an I/O error): the recording ends at the last record
    /// written before it, and nothing more is appended.
    public private(set) var failure: RecordingError?
    private var written = 0
    private var lastFlush = coarseSeconds()

    public func write(event record: [UInt8]) {
        guard !closed else { return }
        buffer += Recording.encode(event: record)
        flushIfDue()
    }

    public func write(_ annotation: Annotation) {
        guard !closed else { return }
        buffer += Recording.encode(annotation)
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
        guard failure == nil, !closed else { return }
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
    /// Ends the recording with its end mark, so that a reader knows it is whole. Nothing is
    /// written after: the fd number may be another file's by then.
    public func close() {
        guard !closed else { return }
        write(.end)
        flush()
        closed = true
        Glibc.close(fd)
    }
}

private func coarseSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    return ts.tv_sec
}
