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

    @Test func authorizationHeader() {
        let web = WebConfig(users: ["prom": hash])
        #expect(web.authorized("Basic cHJvbTpwdw=="))          // prom:pw
        #expect(!web.authorized("Basic cHJvbTpwVw=="))         // prom:pW
        #expect(!web.authorized("Basic b3RoZXI6cHc="))         // other:pw
        #expect(!web.authorized(nil))
        #expect(!web.authorized("Bearer cHJvbTpwdw=="))
        #expect(WebConfig().authorized(nil), "no users configured: open")
    }
}
