import Foundation
import Synchronization
import Testing
import IrqscopeServer

@Suite struct SimpleYAMLTests {
    @Test func exporterToolkitWebConfig() throws {
        let v = try parseYAML("""
            # the web config
            tls_server_config:
              cert_file: "server.crt"   # quoted
              key_file: server.key
              client_auth_type: RequireAndVerifyClientCert
              cipher_suites:
                - TLS_AES_128_GCM_SHA256
                - 'TLS_AES_256_GCM_SHA384'
            basic_auth_users:
              prometheus: $2b$10$CieWoXQ5MyWK7rhMeBtubuVwNLF92mZhS8NlQmXgxA0ef0AYycCri
              'odd: name': "x"
            """)
        #expect(v["tls_server_config"]?["cert_file"]?.string == "server.crt")
        #expect(v["tls_server_config"]?["client_auth_type"]?.string == "RequireAndVerifyClientCert")
        #expect(v["tls_server_config"]?["cipher_suites"] == .list([.scalar("TLS_AES_128_GCM_SHA256"), .scalar("TLS_AES_256_GCM_SHA384")]))
        #expect(v["basic_auth_users"]?["prometheus"]?.string == "$2b$10$CieWoXQ5MyWK7rhMeBtubuVwNLF92mZhS8NlQmXgxA0ef0AYycCri")
        #expect(v["basic_auth_users"]?["odd: name"]?.string == "x")
    }

    @Test(arguments: [
        ("a: 1\n\tb: 2", "tabs"), ("a: &x 1\nb: *x", "anchors"), ("a: |\n  text", "block scalars"),
        ("a: 1\na: 2", "duplicate key"), ("a: 'open", "unterminated"), ("just text", "expected 'key: value'"),
        ("a:\n  b: 1\n    c: 2", "unexpected indentation"), ("[1, 2]", "unsupported"),
    ])
    func refusesWhatItDoesNotSupport(text: String, mentions: String) {
        do {
            _ = try parseYAML(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(mentions), "\(error)")
        }
    }
}

@Suite struct BasicAuthTests {
    let hash = "$2b$10$CieWoXQ5MyWK7rhMeBtubuVwNLF92mZhS8NlQmXgxA0ef0AYycCri" // "pw", made by python's crypt

    @Test func bcryptThroughLibxcrypt() {
        #expect(bcryptMatches("pw", hash: hash))
        #expect(!bcryptMatches("pW", hash: hash))
        #expect(!bcryptMatches("", hash: hash))
    }

    func base64(_ s: [UInt8]) -> String { Data(s).base64EncodedString() }

    /// The verdict, with bcrypt run where the server would run it (off the event loop).
    func allowed(_ auth: BasicAuth, _ header: String?) -> Bool {
        switch auth.verdict(header) {
        case .allowed: true
        case .denied: false
        case .verify(let c): auth.check(c)
        }
    }

    @Test func authorizationHeader() throws {
        let auth = try #require(BasicAuth(users: ["prom": hash]))
        #expect(allowed(auth, "Basic " + base64(Array("prom:pw".utf8))))
        #expect(allowed(auth, "basic " + base64(Array("prom:pw".utf8))), "the scheme is case-insensitive (RFC 7617)")
        #expect(!allowed(auth, "Basic " + base64(Array("prom:pW".utf8))))
        #expect(!allowed(auth, "Basic " + base64(Array("other:pw".utf8))))
        #expect(!allowed(auth, nil))
        #expect(!allowed(auth, "Bearer " + base64(Array("prom:pw".utf8))))
        // a lenient decoder read these as prom:pw
        #expect(!allowed(auth, "Basic " + base64(Array("prom:pw".utf8)).dropLast(2)))
        #expect(!allowed(auth, "Basic cHJv*bTpwdw=="))
        #expect(BasicAuth(users: [:]) == nil, "no users configured: no authentication")
    }

    /// crypt(3) sees a C string: "pw\0x" used to be checked as "pw" and let in.
    @Test func aPasswordWithANulIsWrong() throws {
        let auth = try #require(BasicAuth(users: ["prom": hash]))
        #expect(!allowed(auth, "Basic " + base64(Array("prom:pw".utf8) + [0] + Array("x".utf8))))
    }

    /// An unknown user costs the same bcrypt as a wrong password (against a configured hash), so
    /// the time to refuse does not tell which users exist. Counted, not timed.
    @Test func unknownUsersCostABcryptToo() throws {
        let calls = Mutex<[String]>([])
        let auth = try #require(BasicAuth(users: ["prom": hash]) { _, h in calls.withLock { $0.append(h) }; return false })
        for header in ["Basic " + base64(Array("prom:nope".utf8)), "Basic " + base64(Array("nobody:nope".utf8))] {
            guard case .verify(let c) = auth.verdict(header) else { Issue.record("no check for \(header)"); continue }
            #expect(!auth.check(c))
        }
        #expect(calls.withLock { $0 } == [hash, hash])
    }

    /// A verified password is remembered: the next request needs no bcrypt. A wrong one is not.
    @Test func verifiedPasswordsAreRemembered() throws {
        let auth = try #require(BasicAuth(users: ["prom": hash]))
        let good = "Basic " + base64(Array("prom:pw".utf8)), bad = "Basic " + base64(Array("prom:nope".utf8))
        guard case .verify = auth.verdict(good) else { Issue.record("bcrypt skipped before any check"); return }
        #expect(allowed(auth, good))
        guard case .allowed = auth.verdict(good) else { Issue.record("a verified password needs bcrypt again"); return }
        #expect(!allowed(auth, bad))
        guard case .verify = auth.verdict(bad) else { Issue.record("a wrong password was remembered"); return }
    }
}

@Suite struct WebConfigFileTests {
    let hash = "$2b$10$CieWoXQ5MyWK7rhMeBtubuVwNLF92mZhS8NlQmXgxA0ef0AYycCri"

    func parse(_ text: String) throws(ServerError) -> WebConfigFile { try WebConfigFile.parse(text, path: "/etc/irqscope/web.yml") }

    @Test func crlfAndByteOrderMarkReadAsPlainText() throws {
        let text = "tls_server_config:\n  cert_file: tls.crt\n  key_file: /k/tls.key\nbasic_auth_users:\n  prom: \(hash)\n"
        let plain = try parse(text)
        #expect(try parse("\u{FEFF}" + text.replacingOccurrences(of: "\n", with: "\r\n")) == plain)
        #expect(plain.tls?.certFile == "/etc/irqscope/tls.crt" && plain.tls?.keyFile == "/k/tls.key")
        #expect(plain.users == ["prom": hash])
    }

    @Test func cipherSuitesByTheirGoNames() throws {
        let t = try parse("""
            tls_server_config:
              cert_file: a
              key_file: b
              cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
            """.replacingOccurrences(of: "[TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]", with: "\n    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n    - TLS_AES_128_GCM_SHA256"))
        #expect(t.tls?.cipherSuites == ["ECDHE-RSA-AES128-GCM-SHA256"])
        let defaults = try parse("tls_server_config:\n  cert_file: a\n  key_file: b\n")
        #expect(defaults.tls?.cipherSuites.allSatisfy { $0.hasPrefix("ECDHE-") } == true, "TLS 1.2 defaults are forward secret")
    }

    @Test(arguments: [
        ("", "configures neither TLS nor basic auth"),
        ("# nothing\n", "configures neither TLS nor basic auth"),
        ("http_server_config:\n  http2: false\n", "configures neither TLS nor basic auth"),
        ("basic_auth_users:\n  prom: $2y$10$tooShort\n", "not a bcrypt hash"),
        ("basic_auth_users:\n  prom: $2y$+9$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n", "not a bcrypt hash"),
        ("basic_auth_users:\n  prom: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeS!\n", "not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - TLS_RSA_WITH_RC4_128_SHA\n", "not supported"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - TLS_AES_128_GCM_SHA256\n", "no TLS 1.2 suite"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", "below min_version"),
    ])
    func refused(text: String, mentions: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(mentions) && error.description.hasPrefix("web config /etc/irqscope/web.yml: "), "\(error)")
        }
    }
}
