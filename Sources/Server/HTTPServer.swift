import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var headers: [(String, String)]

    public init(method: String, path: String, headers: [(String, String)] = []) {
        self.method = method
        self.path = path
        self.headers = headers
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.0.lowercased() == lower }?.1
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(String, String)] = []

    public init(status: Int, contentType: String, body: String) {
        self.status = status
        self.contentType = contentType
        self.body = Array(body.utf8)
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public var description: String
}

/// A small HTTP/1.1 server for the metrics endpoint, bound before it runs so that a port in
/// use is reported at start-up, not after the BPF programs are attached.
public final class HTTPServer: Service {
    private let channels: [Channel]
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger

    private init(channels: [Channel], group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.channels = channels
        self.group = group
        self.logger = logger
    }

    public var boundAddresses: [String] {
        channels.compactMap { channel in
            guard let address = channel.localAddress, let ip = address.ipAddress, let port = address.port else { return nil }
            return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    /// Binds every address or none, blocking the calling thread (not an event loop thread).
    /// `web`: TLS and basic authentication (`--web.config.file`); requests without valid
    /// credentials get 401 before the handler runs.
    public static func bind(_ addresses: [ListenAddress], web: WebConfig = WebConfig(), logger: Logger,
                            handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws -> HTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let guarded: @Sendable (HTTPRequest) -> HTTPResponse = { request in
            guard web.authorized(request.header("Authorization")) else {
                var r = HTTPResponse(status: 401, contentType: "text/plain; charset=utf-8", body: "unauthorized\n")
                r.headers = [("WWW-Authenticate", "Basic realm=\"irqscope\"")]
                return r
            }
            return handler(request)
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = web.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(guarded))
                }
            }
        var channels: [Channel] = []
        do {
            for address in addresses {
                channels.append(try bindOne(bootstrap, address))
            }
        } catch {
            for channel in channels { try? channel.close().wait() }
            try? group.syncShutdownGracefully()
            throw error
        }
        return HTTPServer(channels: channels, group: group, logger: logger)
    }

    private static func bindOne(_ bootstrap: ServerBootstrap, _ address: ListenAddress) throws -> Channel {
        do {
            if address.host.isEmpty {
                // All interfaces: dual-stack where the kernel has IPv6, IPv4 otherwise.
                do {
                    return try bootstrap.bind(host: "::", port: address.port).wait()
                } catch let error as IOError where error.errnoCode == EAFNOSUPPORT || error.errnoCode == EADDRNOTAVAIL {
                    return try bootstrap.bind(host: "0.0.0.0", port: address.port).wait()
                }
            }
            return try bootstrap.bind(host: address.host, port: address.port).wait()
        } catch let error as IOError {
            let reason = error.errnoCode == EADDRINUSE ? "address already in use" : "\(error)"
            throw ServerError(description: "cannot listen on \(address): \(reason)")
        } catch {
            throw ServerError(description: "cannot listen on \(address): \(error)")
        }
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            for channel in channels { try await channel.closeFuture.get() }
        } onGracefulShutdown: { [channels] in
            for channel in channels { channel.close(promise: nil) }
        }
        try await group.shutdownGracefully()
    }
}

private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    private var head: HTTPRequestHead?

    init(_ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) { self.handler = handler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let request = HTTPRequest(method: head.method.rawValue, path: path, headers: head.headers.map { ($0.name, $0.value) })
        let response = handler(request)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        headers.add(name: "Content-Length", value: String(response.body.count))
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: response.status), headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
