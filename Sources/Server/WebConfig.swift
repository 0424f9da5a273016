import CCrypt
import Glibc
import IrqscopeDecode
import NIOSSL
import Synchronization

/// `--web.config.file` in the Prometheus exporter-toolkit format: TLS (with client certificate
/// verification) and HTTP basic authentication with bcrypt hashes. Read once at start, before
/// capabilities are dropped; relative paths are relative to the file.
public struct WebConfig: Sendable {
    public var tls: NIOSSLContext?
    public var auth: BasicAuth?

    public init(tls: NIOSSLContext? = nil, users: [String: String] = [:]) {
        self.tls = tls
        auth = BasicAuth(users: users)
    }

    public static func load(path: String) throws(ServerError) -> WebConfig {
        let file = try WebConfigFile.parse(try readWhole(path), path: path)
        return WebConfig(tls: try file.tls.map { t throws(ServerError) in try context(t, path: path) }, users: file.users)
    }

    /// The whole file, or an error: a file cut at the size limit would lose the settings after the cut.
    static func readWhole(_ path: String) throws(ServerError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ServerError(description: "cannot read web config \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw ServerError(description: "cannot read web config \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > WebConfigFile.maxBytes {
                throw ServerError(description: "web config \(path) is larger than \(WebConfigFile.maxBytes >> 20) MiB")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Each file is loaded on its own, so that an error names the one at fault.
    static func context(_ t: WebConfigFile.TLS, path: String) throws(ServerError) -> NIOSSLContext {
        func fail(_ why: String) -> ServerError { ServerError(description: "web config \(path): \(why)") }
        func readable(_ file: String, _ what: String) throws(ServerError) {
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw fail("cannot read \(what) \(file): \(String(cString: strerror(errno)))") }
            close(fd)
        }
        try readable(t.certFile, "certificate")
        try readable(t.keyFile, "private key")
        let chain: [NIOSSLCertificate], key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(t.certFile) } catch { throw fail("\(t.certFile) holds no PEM certificate") }
        guard !chain.isEmpty else { throw fail("\(t.certFile) holds no PEM certificate") }
        do { key = try NIOSSLPrivateKey(file: t.keyFile, format: .pem) } catch { throw fail("\(t.keyFile) holds no PEM private key") }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = t.minVersion == .tls12 ? .tlsv12 : .tlsv13
        tls.maximumTLSVersion = t.maxVersion == .tls12 ? .tlsv12 : .tlsv13
        if !t.cipherSuites.isEmpty { tls.cipherSuites = t.cipherSuites.joined(separator: ":") }
        switch t.clientAuth {
        case .none: tls.certificateVerification = .none
        case .required: tls.certificateVerification = .noHostnameVerification
        case .ifGiven: tls.certificateVerification = .optionalVerification
        }
        if let ca = t.clientCAFile {
            try readable(ca, "client CA")
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) } catch {
                throw fail("\(ca) holds no PEM certificate")
            }
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // both files parsed: what BoringSSL refused is the pair
            throw fail("the private key in \(t.keyFile) does not belong to the certificate in \(t.certFile)")
        } catch {
            throw fail("TLS (\(t.certFile), \(t.keyFile)): \(error)")
        }
    }
}

/// HTTP basic authentication against bcrypt hashes, as exporter-toolkit does it:
/// - A password once verified is remembered for its user, so a scraper with the right password
///   gets in at once, even while a flood of wrong ones waits for bcrypt. Wrong passwords are not
///   remembered: a flood varies them, and a failure cache would only evict the right one.
/// - An unknown user costs one bcrypt against a configured hash, as a wrong password does: the
///   time to refuse does not tell which users exist (give every user the same cost).
/// The server runs `check` off its event loop, one at a time.
public final class BasicAuth: Sendable {
    public struct Credentials: Sendable {
        public var user: String
        public var password: [UInt8]
    }

    public enum Verdict: Sendable {
        case allowed
        case denied
        /// Needs bcrypt: `check` it, off the event loop.
        case verify(Credentials)
    }

    let users: [String: String]
    /// Stands in for an unknown user's hash.
    let decoy: String
    private let verified = Mutex<[String: [UInt8]]>([:])
    /// bcrypt; a test counts the calls instead of timing them.
    let matches: @Sendable ([UInt8], String) -> Bool

    public init?(users: [String: String], matches: @escaping @Sendable ([UInt8], String) -> Bool = { bcryptMatches($0, hash: $1) }) {
        guard let decoy = users.sorted(by: { $0.key < $1.key }).first?.value else { return nil }
        self.users = users
        self.decoy = decoy
        self.matches = matches
    }

    /// What can be decided without bcrypt.
    public func verdict(_ header: String?) -> Verdict {
        // RFC 7617: the scheme name is case-insensitive
        guard let header, header.count > 6, header.prefix(6).lowercased() == "basic " else { return .denied }
        let decoded: [UInt8]
        do { decoded = try Base64.decode(String(header.dropFirst(6)).trimmingSpaces()) } catch { return .denied }
        guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return .denied }
        let credentials = Credentials(user: String(decoding: decoded[..<colon], as: UTF8.self),
                                      password: Array(decoded[(colon + 1)...]))
        let known = verified.withLock { $0[credentials.user] }
        if let known, constantTimeEqual(known, credentials.password) { return .allowed }
        return .verify(credentials)
    }

    /// bcrypt: tens of milliseconds at cost 10.
    public func check(_ c: Credentials) -> Bool {
        let hash = users[c.user]
        // crypt(3) takes a C string: a password with a NUL in it could only be checked cut
        // short, so it fails, after the same work as any other.
        let matched = matches(c.password, hash ?? decoy)
        guard matched, hash != nil, !c.password.contains(0) else { return false }
        verified.withLock { $0[c.user] = c.password }
        return true
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
}

/// crypt_r with the stored hash as the setting recomputes it from the password (libxcrypt's bcrypt).
public func bcryptMatches(_ password: some Collection<UInt8>, hash: String) -> Bool {
    let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
    defer { data.deallocate() }
    memset(data, 0, MemoryLayout<crypt_data>.size)
    let cPassword = password.map { CChar(bitPattern: $0) } + [0]
    guard let out = crypt_r(cPassword, hash, data) else { return false }
    return constantTimeEqual(Array(String(cString: out).utf8), Array(hash.utf8))
}

public func bcryptMatches(_ password: String, hash: String) -> Bool { bcryptMatches(Array(password.utf8), hash: hash) }
