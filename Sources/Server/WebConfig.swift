import CCrypt
import Glibc
import IrqscopeDecode
import NIOSSL

/// `--web.config.file` in the Prometheus exporter-toolkit format: TLS (with client certificate
/// verification) and HTTP basic authentication with bcrypt hashes. Read once at start; relative
/// paths are relative to the file.
public struct WebConfig: Sendable {
    public var tls: NIOSSLContext?
    public var users: [String: String]

    public init(tls: NIOSSLContext? = nil, users: [String: String] = [:]) {
        self.tls = tls
        self.users = users
    }

    public static func load(path: String) throws(ServerError) -> WebConfig {
        guard let text = readFile(path) else { throw ServerError(description: "cannot read web config \(path)") }
        let root: YAMLValue
        do { root = try parseYAML(text) } catch { throw ServerError(description: "web config \(path): \(error)") }
        guard case .map(let top) = root else { throw ServerError(description: "web config \(path): not a YAML map") }
        let base = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) + "/" : ""
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : base + p }

        var config = WebConfig()
        for (key, value) in top {
            switch key {
            case "tls_server_config":
                config.tls = try tlsContext(value, resolve: resolve, path: path)
            case "basic_auth_users":
                guard case .map(let users) = value else { throw ServerError(description: "web config \(path): basic_auth_users must map users to bcrypt hashes") }
                for (user, hash) in users {
                    guard let h = hash.string, h.hasPrefix("$2") else {
                        throw ServerError(description: "web config \(path): the password of '\(user)' is not a bcrypt hash")
                    }
                    config.users[user] = h
                }
            case "http_server_config":
                try refuseUnsupported(value, section: key, known: ["http2"], path: path)
                if value["http2"]?.string == "true" { throw ServerError(description: "web config \(path): http2 is not supported") }
            default:
                throw ServerError(description: "web config \(path): unknown key '\(key)'")
            }
        }
        return config
    }

    static func tlsContext(_ v: YAMLValue, resolve: (String) -> String, path: String) throws(ServerError) -> NIOSSLContext {
        try refuseUnsupported(v, section: "tls_server_config",
                              known: ["cert", "key", "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"], path: path)
        for key in ["cert", "key"] where v[key] != nil {
            throw ServerError(description: "web config \(path): inline \(key) is not supported, use \(key)_file")
        }
        guard let cert = v["cert_file"]?.string, let key = v["key_file"]?.string else {
            throw ServerError(description: "web config \(path): tls_server_config needs cert_file and key_file")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(resolve(cert)).map { NIOSSLCertificateSource.certificate($0) }
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: resolve(key), format: .pem)))
            switch v["min_version"]?.string ?? "TLS12" {
            case "TLS12": tls.minimumTLSVersion = .tlsv12
            case "TLS13": tls.minimumTLSVersion = .tlsv13
            case let other: throw ServerError(description: "web config \(path): min_version \(other) is not supported (TLS12 or TLS13)")
            }
            let auth = v["client_auth_type"]?.string ?? "NoClientCert"
            switch auth {
            case "NoClientCert": tls.certificateVerification = .none
            case "RequireAndVerifyClientCert": tls.certificateVerification = .noHostnameVerification
            case "VerifyClientCertIfGiven": tls.certificateVerification = .optionalVerification
            default: throw ServerError(description: "web config \(path): client_auth_type \(auth) is not supported")
            }
            if auth != "NoClientCert" {
                guard let ca = v["client_ca_file"]?.string else {
                    throw ServerError(description: "web config \(path): client_auth_type \(auth) needs client_ca_file")
                }
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(resolve(ca)))
            }
            return try NIOSSLContext(configuration: tls)
        } catch let error as ServerError {
            throw error
        } catch {
            throw ServerError(description: "web config \(path): TLS: \(error)")
        }
    }

    /// A setting irqscope would not honour is an error, never silently ignored (a cipher list or
    /// a header someone relies on for security).
    static func refuseUnsupported(_ v: YAMLValue, section: String, known: Set<String>, path: String) throws(ServerError) {
        guard case .map(let fields) = v else { throw ServerError(description: "web config \(path): \(section) must be a map") }
        for (key, _) in fields where !known.contains(key) {
            throw ServerError(description: "web config \(path): \(section).\(key) is not supported")
        }
    }

    /// Whether a request's `Authorization` header names a configured user with the right password.
    public func authorized(_ header: String?) -> Bool {
        guard !users.isEmpty else { return true }
        guard let header, header.hasPrefix("Basic ") else { return false }
        let decoded = String(decoding: base64Decode(String(header.dropFirst(6))), as: UTF8.self)
        guard let colon = decoded.firstIndex(of: ":"), let hash = users[String(decoded[..<colon])] else { return false }
        return bcryptMatches(String(decoded[decoded.index(after: colon)...]), hash: hash)
    }
}

/// crypt_r with the stored hash as the setting recomputes it from the password (libxcrypt's bcrypt).
public func bcryptMatches(_ password: String, hash: String) -> Bool {
    let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
    defer { data.deallocate() }
    memset(data, 0, MemoryLayout<crypt_data>.size)
    guard let out = crypt_r(password, hash, data) else { return false }
    let computed = Array(String(cString: out).utf8), expected = Array(hash.utf8)
    guard computed.count == expected.count else { return false }
    return zip(computed, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0 // constant time
}
