import Glibc

/// A keep-alive HTTP/1.1 client on one TCP connection to 127.0.0.1, as small as a scrape needs:
/// Content-Length or chunked bodies (Go's promhttp sends gzip chunked), nothing decoded.
final class HTTPConnection {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        /// Everything read off the socket for it: status line, headers, body, chunk framing.
        var wireBytes: Int
    }

    private var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var start = 0
    let port: Int

    init(port: Int) { self.port = port }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        buffer = []
        start = 0
    }

    /// Connects once; false while nothing listens.
    func connect() -> Bool {
        if fd >= 0 { return true }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return false }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(s)
            return false
        }
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        fd = s
        return true
    }

    /// One GET on the kept-alive connection; nil when the connection broke (it is closed then).
    func get(_ path: String, headers: [String] = []) -> Response? {
        guard connect() else { return nil }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
        let sent = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.utf8.count, let response = readResponse() else {
            close()
            return nil
        }
        if response.headers["connection"]?.lowercased() == "close" { close() }
        return response
    }

    private func readResponse() -> Response? {
        let before = consumed
        guard let headEnd = find([13, 10, 13, 10]) else { return nil }
        let head = String(decoding: buffer[start..<headEnd], as: UTF8.self)
        start = headEnd + 4
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].drop { $0 == " " }.description
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                guard let lineEnd = find([13, 10]) else { return nil }
                let sizeText = String(decoding: buffer[start..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText, radix: 16) else { return nil }
                start = lineEnd + 2
                guard fill(size + 2) else { return nil }
                body += buffer[start..<(start + size)]
                start += size + 2
                if size == 0 { break }
            }
        } else {
            let length = Int(headers["content-length"] ?? "0") ?? 0
            guard fill(length) else { return nil }
            body = Array(buffer[start..<(start + length)])
            start += length
        }
        return Response(status: status, headers: headers, body: body, wireBytes: consumed - before)
    }

    /// Bytes taken from the connection so far, for the wire size of one response.
    private var taken = 0
    private var consumed: Int { taken + start }

    /// The index of `pattern` at or after `start`, reading more until it comes.
    private func find(_ pattern: [UInt8]) -> Int? {
        // relative to `start`, which reading more moves
        var offset = 0
        while true {
            if buffer.count - start - offset >= pattern.count {
                for i in (start + offset)...(buffer.count - pattern.count) where buffer[i] == pattern[0] {
                    if buffer[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
                }
                offset = buffer.count - pattern.count + 1 - start
            }
            guard readMore() else { return nil }
        }
    }

    private func fill(_ count: Int) -> Bool {
        while buffer.count - start < count {
            guard readMore() else { return false }
        }
        return true
    }

    private func readMore() -> Bool {
        if start > 0 {
            taken += start
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        buffer += chunk[0..<n]
        return true
    }
}
