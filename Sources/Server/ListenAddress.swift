/// A `--web.listen-address` value in the exporter-toolkit form: ":PORT" (all interfaces),
/// "HOST:PORT", "[IPV6]:PORT".
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ServerError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ServerError(description: "invalid listen address '\(text)': expected [IPV6]:PORT")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ServerError(description: "invalid listen address '\(text)': expected HOST:PORT or :PORT")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw ServerError(description: "invalid listen address '\(text)': write IPv6 hosts as [ADDR]:PORT")
            }
        }
        guard let port = Int(portPart), (1...65535).contains(port) else {
            throw ServerError(description: "invalid listen address '\(text)': port must be 1-65535")
        }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String {
        host.isEmpty ? ":\(port)" : host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
