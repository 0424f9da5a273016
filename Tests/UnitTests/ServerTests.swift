import Testing
@testable import IrqscopeServer

@Suite struct ListenAddressTests {
    @Test(arguments: [
        (":10341", "", 10341), ("127.0.0.1:9999", "127.0.0.1", 9999), ("[::1]:10341", "::1", 10341),
        ("localhost:80", "localhost", 80),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let a = try ListenAddress(parsing: text)
        #expect(a.host == host && a.port == port)
        #expect(a.description == text)
    }

    @Test(arguments: ["10341", ":0", ":70000", "::1:80", "[::1]80", "host:", ":port"])
    func rejects(text: String) {
        #expect(throws: ServerError.self) { try ListenAddress(parsing: text) }
    }
}

/// Accept-Encoding as RFC 9110 reads it: a coding with q=0 is refused, `*` stands for the rest.
@Suite struct ContentCodingTests {
    @Test(arguments: [
        ("gzip", true), ("gzip, deflate, br", true), ("deflate", false), ("gzip;q=0", false), ("GZIP; q=0.5", true),
        ("*", true), ("*;q=0", false), ("gzip;q=0, *", false), ("identity", false), ("", false), ("br, x-gzip", true),
    ])
    func gzipIsTakenWhenAccepted(header: String, accepted: Bool) {
        #expect(acceptsGzip(header) == accepted)
    }
}
