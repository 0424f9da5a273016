import CZlib
import Synchronization

/// gzip (RFC 1952) at zlib's fastest level: a scrape is small, frequent and mostly repeated
/// label text, which level 1 already shrinks about tenfold. One deflate state, reset for each
/// body: setting one up allocates and clears some 270 KB (4% of a scrape's CPU in `perf`, in
/// memset and page faults).
func gzip(_ input: [UInt8]) -> [UInt8]? {
    deflater.withLock { $0.compress(input) }
}

private let deflater = Mutex(Deflater())

private struct Deflater: ~Copyable {
    private let stream: UnsafeMutablePointer<z_stream>
    private let ready: Bool

    init() {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits 15 + 16: a gzip header and trailer instead of zlib's
        ready = deflateInit2_(stream, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                              Int32(MemoryLayout<z_stream>.size)) == Z_OK
    }

    func compress(_ input: [UInt8]) -> [UInt8]? {
        guard ready, deflateReset(stream) == Z_OK else { return nil }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(input.count))))
        let rc = input.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.pointee.avail_in = uInt(source.count)
                stream.pointee.next_out = target.baseAddress
                stream.pointee.avail_out = uInt(target.count)
                return deflate(stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        out.removeLast(Int(stream.pointee.avail_out))
        return out
    }
}

/// Whether an Accept-Encoding header takes gzip: named (or `*`) with a non-zero q.
func acceptsGzip(_ header: String?) -> Bool {
    guard let header else { return false }
    var named: Double?, any: Double?
    for item in header.split(separator: ",") {
        let parts = item.split(separator: ";").map { String($0.filter { $0 != " " && $0 != "\t" }).lowercased() }
        guard let coding = parts.first else { continue }
        let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
        if coding == "gzip" || coding == "x-gzip" { named = q } else if coding == "*" { any = q }
    }
    return (named ?? any ?? 0) > 0
}
