/// What a `--web.config.file` says, checked: the exporter-toolkit format, parsed without opening
/// any file it names (so the fuzz target in Tests/Fuzz runs exactly this). `WebConfig.load`
/// turns it into a TLS context and basic auth.
public struct WebConfigFile: Sendable, Equatable {
    public enum ClientAuth: String, Sendable {
        case none = "NoClientCert"
        case ifGiven = "VerifyClientCertIfGiven"
        case required = "RequireAndVerifyClientCert"
    }

    public enum TLSVersion: String, Sendable, Comparable {
        case tls12 = "TLS12", tls13 = "TLS13"
        public static func < (a: Self, b: Self) -> Bool { a == .tls12 && b == .tls13 }
    }

    public struct TLS: Sendable, Equatable {
        public var certFile: String
        public var keyFile: String
        public var clientAuth: ClientAuth = .none
        public var clientCAFile: String?
        public var minVersion: TLSVersion = .tls12
        public var maxVersion: TLSVersion = .tls13
        /// TLS 1.2 suites, as OpenSSL names. TLS 1.3 suites are all forward secret and AEAD, and
        /// (as in Go) not configurable.
        public var cipherSuites: [String] = WebConfigFile.defaultCipherSuites
    }

    public var tls: TLS?
    /// User name to bcrypt hash.
    public var users: [String: String] = [:]

    /// exporter-toolkit reads at most this much; a longer file is refused, never cut.
    public static let maxBytes = 1 << 20

    /// Forward-secret AEAD suites only: Go's defaults also offer RSA key exchange (no forward
    /// secrecy) and CBC; those can still be named in `cipher_suites`.
    public static let defaultCipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ]

    /// Go's names (what exporter-toolkit's `cipher_suites` takes) for the TLS 1.2 suites BoringSSL has.
    static let tls12Suites: [String: String] = [
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    ]
    static let tls13Suites: Set<String> = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]

    public init(tls: TLS? = nil, users: [String: String] = [:]) {
        self.tls = tls
        self.users = users
    }

    /// `path` names the file in errors and is where relative paths start.
    public static func parse(_ text: String, path: String) throws(ServerError) -> WebConfigFile {
        func fail(_ why: String) -> ServerError { ServerError(description: "web config \(path): \(why)") }
        let root: YAMLValue
        do { root = try parseYAML(text) } catch { throw fail(error.description) }
        guard case .map(let top) = root else { throw fail("not a YAML map") }
        let base = path.contains("/") ? String(path[...path.lastIndex(of: "/")!]) : ""
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : base + p }

        var config = WebConfigFile()
        for (key, value) in top {
            switch key {
            case "tls_server_config":
                config.tls = try tls(value, resolve: resolve, fail: fail)
            case "basic_auth_users":
                guard case .map(let users) = value else { throw fail("basic_auth_users must map users to bcrypt hashes") }
                for (user, hash) in users {
                    guard let h = hash.string, isBcrypt(h) else {
                        throw fail("the password of '\(user)' is not a bcrypt hash ($2y$, a cost, $ and 53 characters: htpasswd -nBC 10 \"\" | tr -d ':\\n')")
                    }
                    config.users[user] = h
                }
            case "http_server_config":
                try refuseUnsupported(value, section: key, known: ["http2"], fail: fail)
                if value["http2"]?.string == "true" { throw fail("http2 is not supported") }
            default:
                throw fail("unknown key '\(key)'")
            }
        }
        // An empty file (or a template that rendered to one) would serve in the clear to anyone.
        if config.tls == nil && config.users.isEmpty { throw fail("configures neither TLS nor basic auth") }
        return config
    }

    static func tls(_ v: YAMLValue, resolve: (String) -> String, fail: (String) -> ServerError) throws(ServerError) -> TLS {
        try refuseUnsupported(v, section: "tls_server_config",
                              known: ["cert", "key", "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
                                      "max_version", "cipher_suites"], fail: fail)
        for key in ["cert", "key"] where v[key] != nil {
            throw fail("inline \(key) is not supported, use \(key)_file")
        }
        guard let cert = v["cert_file"]?.string, !cert.isEmpty, let key = v["key_file"]?.string, !key.isEmpty else {
            throw fail("tls_server_config needs cert_file and key_file")
        }
        var tls = TLS(certFile: resolve(cert), keyFile: resolve(key))
        for (field, keyPath) in [("min_version", \TLS.minVersion), ("max_version", \TLS.maxVersion)] {
            guard let text = v[field]?.string else { continue }
            guard let version = TLSVersion(rawValue: text) else { throw fail("\(field) \(text) is not supported (TLS12 or TLS13)") }
            tls[keyPath: keyPath] = version
        }
        if tls.maxVersion < tls.minVersion { throw fail("max_version is below min_version") }
        let auth = v["client_auth_type"]?.string ?? "NoClientCert"
        guard let clientAuth = ClientAuth(rawValue: auth) else { throw fail("client_auth_type \(auth) is not supported") }
        tls.clientAuth = clientAuth
        if clientAuth != .none {
            guard let ca = v["client_ca_file"]?.string, !ca.isEmpty else { throw fail("client_auth_type \(auth) needs client_ca_file") }
            tls.clientCAFile = resolve(ca)
        }
        if let suites = v["cipher_suites"] {
            guard case .list(let items) = suites else { throw fail("cipher_suites must be a list") }
            var names: [String] = []
            for item in items {
                let name = item.string ?? ""
                if let openSSL = tls12Suites[name] { names.append(openSSL) } else if !tls13Suites.contains(name) {
                    throw fail("cipher suite \(name) is not supported (TLS 1.2 suites by their Go names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
                }
            }
            if names.isEmpty && tls.minVersion == .tls12 {
                throw fail("cipher_suites names no TLS 1.2 suite: TLS 1.2 clients could not connect (set min_version: TLS13)")
            }
            tls.cipherSuites = names
        }
        return tls
    }

    /// A setting irqscope would not honour is an error, never silently ignored (a cipher list or
    /// a header someone relies on for security).
    static func refuseUnsupported(_ v: YAMLValue, section: String, known: Set<String>, fail: (String) -> ServerError) throws(ServerError) {
        guard case .map(let fields) = v else { throw fail("\(section) must be a map") }
        for (key, _) in fields where !known.contains(key) {
            throw fail("\(section).\(key) is not supported")
        }
    }

    /// `$2a$`/`$2b$`/`$2x$`/`$2y$`, a two-digit cost 04-31, `$`, 22 characters of salt and 31 of
    /// hash in bcrypt's base64. libxcrypt fails anything else at every login, so it is refused
    /// at start instead.
    static func isBcrypt(_ hash: String) -> Bool {
        let b = Array(hash.utf8)
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"), "abxy".utf8.contains(b[2]),
              b[3] == UInt8(ascii: "$"), b[6] == UInt8(ascii: "$"),
              b[4...5].allSatisfy({ (48...57).contains($0) }),
              let cost = Int(String(decoding: b[4...5], as: UTF8.self)), (4...31).contains(cost) else { return false }
        let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return b[7...].allSatisfy(alphabet.contains)
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
