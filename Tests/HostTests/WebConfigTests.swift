import Foundation
import Testing
import TestSupport

extension Host {
    /// --web.config.file: TLS with client certificates and bcrypt basic auth, checked with curl and
    /// with a real Prometheus scrape.
    @Suite struct WebConfig {
        let dir = NSTemporaryDirectory() + "irqscope-tls-\(UUID().uuidString)"

        func openssl(_ args: String) throws {
            let r = try run(["/bin/sh", "-c", "cd '\(dir)' && openssl \(args)"])
            #expect(r.status == 0, "openssl \(args): \(r.stderr)")
        }

        /// A CA, a server certificate for 127.0.0.1, a client certificate it signed, and a client
        /// certificate from another CA.
        func makePKI() throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for ca in ["ca", "rogue-ca"] {
                try openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=\(ca) -keyout \(ca).key -out \(ca).crt")
            }
            try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
            try openssl("req -newkey rsa:2048 -nodes -subj /CN=irqscope -keyout server.key -out server.csr")
            try openssl("x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt")
            for (name, ca) in [("client", "ca"), ("rogue", "rogue-ca")] {
                try openssl("req -newkey rsa:2048 -nodes -subj /CN=\(name) -keyout \(name).key -out \(name).csr")
                try openssl("x509 -req -in \(name).csr -CA \(ca).crt -CAkey \(ca).key -CAcreateserial -days 2 -out \(name).crt")
            }
            let hash = try run(["python3", "-c", "import crypt; print(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))"])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try """
                tls_server_config:
                  cert_file: server.crt
                  key_file: server.key
                  client_auth_type: RequireAndVerifyClientCert
                  client_ca_file: ca.crt
                basic_auth_users:
                  prom: '\(hash)'
                """.write(toFile: dir + "/web.yml", atomically: true, encoding: .utf8)
        }

        func curl(_ port: Int, _ extra: [String]) throws -> (code: Int32, status: String) {
            let r = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", dir + "/ca.crt"]
                            + extra + ["https://127.0.0.1:\(port)/metrics"], timeout: 30)
            return (r.status, r.stdout)
        }

        @Test func tlsClientCertificatesAndBasicAuth() throws {
            try makePKI()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (server, port) = try serveTLS()
            defer { _ = server.stop() }
            let good = ["--cert", dir + "/client.crt", "--key", dir + "/client.key"]
            #expect(try curl(port, good + ["-u", "prom:s3cret"]) == (0, "200"))
            #expect(try curl(port, good + ["-u", "prom:wrong"]).status == "401", "wrong password")
            #expect(try curl(port, good).status == "401", "no credentials")
            #expect(try curl(port, ["-u", "prom:s3cret"]).code != 0, "no client certificate accepted")
            #expect(try curl(port, ["--cert", dir + "/rogue.crt", "--key", dir + "/rogue.key", "-u", "prom:s3cret"]).code != 0,
                    "a certificate from another CA accepted")
            let plain = try run(["curl", "-s", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"])
            #expect(plain.status != 0 || !plain.stdout.contains("irqscope_"), "plain HTTP served metrics")
        }

        @Test func aPrometheusServerScrapesOverTLSWithAuth() throws {
            try makePKI()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (server, port) = try serveTLS()
            defer { _ = server.stop() }
            let prom = try PrometheusScraper(target: "127.0.0.1:\(port)", settings: [
                "scheme: https",
                "tls_config: {ca_file: \(dir)/ca.crt, cert_file: \(dir)/client.crt, key_file: \(dir)/client.key}",
                "basic_auth: {username: prom, password: s3cret}",
            ])
            defer { prom.stop() }
            let scraped = prom.eventually("up{job=\"irqscope\"} == 1 and on() count(irqscope_interrupts_total) > 0", seconds: 30)
            #expect(!scraped.isEmpty, "no successful TLS scrape; prometheus: \(prom.log.suffix(600))")
        }

        @Test(arguments: [
            ("unknown_key: 1\n", "unknown key 'unknown_key'"),
            ("basic_auth_users:\n  prom: plaintext\n", "not a bcrypt hash"),
            ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n", "cannot read certificate /nonexistent.crt: No such file"),
            ("tls_server_config:\n  cert_file: a\n", "needs cert_file and key_file"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: true\n",
             "tls_server_config.prefer_server_cipher_suites is not supported"),
            ("", "configures neither TLS nor basic auth"),
            ("basic_auth_users:\n  prom: $2y$10$broken\n", "not a bcrypt hash"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: deny\n", "http_server_config.headers is not supported"),
        ])
        func badWebConfigIsOneLine(yaml: String, mentions: String) throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try yaml.write(toFile: dir + "/web.yml", atomically: true, encoding: .utf8)
            let r = try run([HostEnv.binary, "serve", "--web.config.file=\(dir)/web.yml", "--web.listen-address=127.0.0.1:\(freePort())"])
            #expect(r.status == 1)
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(mentions), "stderr: \(r.stderr)")
        }

        /// Each TLS file is named in its error; a key that belongs to another certificate is called that.
        @Test func tlsErrorsNameTheFile() throws {
            try makePKI()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            func start(_ yaml: String) throws -> Finished {
                try yaml.write(toFile: dir + "/bad.yml", atomically: true, encoding: .utf8)
                return try run([HostEnv.binary, "serve", "--web.config.file=\(dir)/bad.yml", "--web.listen-address=127.0.0.1:\(freePort())"])
            }
            let mismatch = try start("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n")
            #expect(mismatch.status == 1 && mismatch.stderr.contains("the private key in \(dir)/client.key does not belong to the certificate in \(dir)/server.crt"),
                    "\(mismatch.stderr)")
            let notPEM = try start("tls_server_config:\n  cert_file: san.ext\n  key_file: server.key\n")
            #expect(notPEM.status == 1 && notPEM.stderr.contains("\(dir)/san.ext holds no PEM certificate"), "\(notPEM.stderr)")
        }

        /// A web config over 1 MiB is refused, not cut (the TLS and auth after the cut were lost).
        @Test func anOversizedWebConfigIsRefused() throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let padding = String(repeating: "# padding\n", count: 110_000)
            try (padding + "basic_auth_users:\n  prom: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n")
                .write(toFile: dir + "/web.yml", atomically: true, encoding: .utf8)
            let r = try run([HostEnv.binary, "serve", "--web.config.file=\(dir)/web.yml", "--web.listen-address=127.0.0.1:\(freePort())"])
            #expect(r.status == 1 && r.stderr.contains("is larger than 1 MiB"), "\(r.stderr)")
        }

        /// TLS 1.2 without forward secrecy is refused by default; cipher_suites can name the suites.
        @Test func tls12OffersOnlyForwardSecretSuites() throws {
            try makePKI()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (server, port) = try serveTLS()
            defer { _ = server.stop() }
            func handshake(_ cipher: String) throws -> Bool {
                let r = try run(["/bin/sh", "-c", "echo | openssl s_client -connect 127.0.0.1:\(port) -tls1_2 -cipher \(cipher) -cert \(dir)/client.crt -key \(dir)/client.key 2>&1"], timeout: 20)
                return r.stdout.contains("Cipher is \(cipher)")
            }
            #expect(try handshake("ECDHE-RSA-AES128-GCM-SHA256"))
            #expect(try !handshake("AES128-GCM-SHA256"), "RSA key exchange (no forward secrecy) accepted")
        }

        /// /healthz answers without credentials: probes need no password; everything else does.
        @Test func healthzNeedsNoPassword() throws {
            try makePKI()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (server, port) = try serveTLS()
            defer { _ = server.stop() }
            let r = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", dir + "/ca.crt",
                             "--cert", dir + "/client.crt", "--key", dir + "/client.key", "https://127.0.0.1:\(port)/healthz"])
            #expect(r.stdout == "200")
            #expect(try curl(port, ["--cert", dir + "/client.crt", "--key", dir + "/client.key"]).status == "401")
        }

        func serveTLS() throws -> (Running, Int) {
            let port = freePort()
            let p = try Running([HostEnv.binary, "serve", "--web.listen-address=127.0.0.1:\(port)", "--web.config.file=\(dir)/web.yml"])
            for _ in 0..<150 {
                if try curl(port, ["--cert", dir + "/client.crt", "--key", dir + "/client.key", "-u", "prom:s3cret"]).status == "200" {
                    return (p, port)
                }
                if !p.process.isRunning { break }
                usleep(200_000)
            }
            let r = p.stop()
            throw ExpositionError(description: "irqscope serve with TLS did not come up: \(r.stderr)")
        }
    }
}
