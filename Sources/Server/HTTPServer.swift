import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

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
    /// Set once the body is as it goes out (compressed or not, Vary said).
    var isEncoded = false

    public init(status: Int, contentType: String, body: String) {
        self.init(status: status, contentType: contentType, bytes: Array(body.utf8))
    }

    public init(status: Int, contentType: String, bytes: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = bytes
    }

    static func text(_ status: Int, _ body: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: body + "\n")
    }

    /// Compressed as Prometheus asks for it; a few bytes (healthz, errors) are not worth it.
    func encoded(gzip wanted: Bool) -> HTTPResponse {
        var r = self
        r.isEncoded = true
        guard body.count >= 512 else { return r }
        r.headers.append(("Vary", "Accept-Encoding"))
        if wanted, let packed = gzip(body) {
            r.body = packed
            r.headers.append(("Content-Encoding", "gzip"))
        }
        return r
    }
}

/// What any one client, or all of them, can make the server hold. Where node_exporter or
/// Prometheus has the limit, the default and the flag name are theirs.
public struct ServerLimits: Sendable {
    /// Requests answered at once, counting responses still being written to clients that read
    /// slowly; more get 503 (node_exporter's --web.max-requests, 40). 0: no limit. /healthz is
    /// not counted.
    public var maxRequests = 40
    /// Open connections; at the limit a new connection closes the one idle the longest (Prometheus's
    /// --web.max-connections, 512). Each costs a descriptor: keep it under RLIMIT_NOFILE.
    public var maxConnections = 512
    /// A request (head and body) must arrive within this of its first byte, or of the connection's
    /// start for the first one (TLS handshake included). node_exporter has none: a client that
    /// sends nothing holds its connection forever.
    public var readTimeout: TimeAmount = .seconds(10)
    /// How long a kept-alive connection may wait for its next request: longer than the usual
    /// scrape intervals, so Prometheus keeps its connection.
    public var idleTimeout: TimeAmount = .minutes(2)
    /// A client has this long to take a response; one that does not read is dropped.
    public var writeTimeout: TimeAmount = .seconds(30)
    /// Password checks (bcrypt, one at a time off the event loop) that may wait; more get 429.
    public var maxPendingLogins = 8
    /// A refused login (401, 429) is answered no sooner than this after its request arrived: a
    /// client flooding wrong passwords on a connection cannot spin faster than once a second, and
    /// every refusal takes the same time whatever the user.
    public var refusalDelay: TimeAmount = .seconds(1)
    /// No route takes a body; a request with a larger one gets 413.
    public var maxBodyBytes = 64 << 10
    /// Request heads: what Prometheus sends is under 1 KiB (Go allows 1 MiB).
    public var headerBytes = 16 << 10

    public init() {}
}

/// A small HTTP/1.1 server for the metrics endpoint. It binds before the BPF programs are
/// attached, so that an address in use ends the start at once, and accepts once `serve` is called.
///
/// One request per connection at a time: while a response is being answered or written, nothing
/// more is read from that connection, so a client that pipelines and never reads holds one
/// response, not thousands.
public final class HTTPServer: Service {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    private let channels: [Channel]
    private let group: MultiThreadedEventLoopGroup
    private let shared: Shared

    /// What every connection handler reads; `route` is set once, by `serve`.
    final class Shared: Sendable {
        let limits: ServerLimits
        let auth: BasicAuth?
        let logger: Logger
        /// bcrypt runs here: one thread, so a flood of logins costs one core, not the event loop.
        let logins = NIOThreadPool(numberOfThreads: 1)
        /// Routes (the scrape) and gzip run here, so that the event loop keeps answering /healthz
        /// and reading other connections while a scrape reads the kernel and renders. One thread:
        /// scrapes are serialised by the collector anyway.
        let work = NIOThreadPool(numberOfThreads: 1)
        let connections: NIOLoopBound<Connections>
        /// In a struct: a closure kept directly in the Mutex's generic storage was re-wrapped in
        /// two reabstraction thunks at every withLock, so each request called through all earlier
        /// requests' thunks (14% of a scrape's CPU after 3,000 scrapes, and growing memory).
        let route = Mutex<Route?>(nil)
        struct Route { let handle: Handler }
        /// Answered without credentials and outside maxRequests: it says only "ok", and a probe
        /// (Kubernetes, systemd) must not need the scrape password.
        let open: Set<String> = ["/healthz"]

        init(limits: ServerLimits, auth: BasicAuth?, logger: Logger, connections: NIOLoopBound<Connections>) {
            self.limits = limits
            self.auth = auth
            self.logger = logger
            self.connections = connections
        }
    }

    private init(channels: [Channel], group: MultiThreadedEventLoopGroup, shared: Shared) {
        self.channels = channels
        self.group = group
        self.shared = shared
    }

    public var boundAddresses: [String] {
        channels.compactMap { channel in
            guard let address = channel.localAddress, let ip = address.ipAddress, let port = address.port else { return nil }
            return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    /// Binds every address or none, blocking the calling thread (not an event loop thread).
    /// Nothing is accepted until `serve`. `web`: TLS and basic authentication.
    public static func bind(_ addresses: [ListenAddress], web: WebConfig = WebConfig(), limits: ServerLimits = ServerLimits(),
                            logger: Logger) throws(ServerError) -> HTTPServer {
        // one event loop: every connection's state is touched on one thread, without locks
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // made on the loop: a loop-bound value checks where it is used from
        let connections = try! loop.submit { NIOLoopBound(Connections(), eventLoop: loop) }.wait()
        let shared = Shared(limits: limits, auth: web.auth, logger: logger, connections: connections)
        let decoderLimits = {
            var d = NIOHTTPDecoderLimitConfiguration()
            d.maxHeaderFieldSize = limits.headerBytes
            d.maxHeaderListSize = limits.headerBytes
            d.maxHeaderFieldCount = 100
            return d
        }()
        let bootstrap = ServerBootstrap(group: group)
            // as Go does (the kernel caps it at net.core.somaxconn): a burst of connections waits
            // in the queue instead of overflowing it into SYN retransmits of a second and more
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)
            // reads of at most 4 KiB (Go reads requests through a 4 KiB buffer too): what one read
            // can hold of pipelined requests is what waits for their turn
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
            // A response counts as taken once the kernel holds it; with the kernel's default (and
            // autotuned, up to 4 MiB) send buffer, a client that never reads "takes" hundreds of
            // scrapes before anything waits. 32 KiB (the kernel doubles it) keeps that to a few
            // scrapes and the kernel memory of each connection small; Prometheus reads at once.
            .childChannelOption(.socketOption(.so_sndbuf), value: 32 << 10)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = ConnectionHandler(shared: shared, connections: shared.connections.value)
                    let pipeline = channel.pipeline.syncOperations
                    if let tls = web.tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.addHandler(FirstBytes(connection))
                    try pipeline.addHandler(HTTPResponseEncoder())
                    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(
                        leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: decoderLimits)))
                    try pipeline.addHandler(connection)
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
        shared.logins.start()
        shared.work.start()
        return HTTPServer(channels: channels, group: group, shared: shared)
    }

    private static func bindOne(_ bootstrap: ServerBootstrap, _ address: ListenAddress) throws(ServerError) -> Channel {
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
            throw ServerError(description: "cannot listen on \(address): \(String(cString: strerror(error.errnoCode)).lowercased())")
        } catch {
            throw ServerError(description: "cannot listen on \(address): \(error)")
        }
    }

    /// Starts accepting; connections made since `bind` waited in the listen backlog.
    public func serve(_ handler: @escaping Handler) {
        shared.route.withLock { $0 = Shared.Route(handle: handler) }
        for channel in channels { channel.setOption(.autoRead, value: true).whenFailure { _ in } }
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            for channel in channels { try await channel.closeFuture.get() }
        } onGracefulShutdown: { [channels, shared] in
            for channel in channels { channel.close(promise: nil) }
            shared.connections.eventLoop.execute { shared.connections.value.closeAll() }
        }
        try await shared.logins.shutdownGracefully()
        try await shared.work.shutdownGracefully()
        try await group.shutdownGracefully()
    }
}

/// Every open connection and the limits that span them. Used on the server's one event loop only.
final class Connections {
    private var open: [ObjectIdentifier: ConnectionHandler] = [:]
    var requestsInFlight = 0
    var loginsPending = 0
    private var warned: NIODeadline?

    /// At the limit, the connection idle the longest makes room (a scraper's connection is busy
    /// or was just used; one that sends nothing is neither), else the new one is refused.
    func admit(_ new: ConnectionHandler, limit: Int, logger: Logger) -> Bool {
        if open.count >= limit {
            let victim = open.values.filter(\.isIdle).min { $0.idleSince < $1.idleSince }
            if warned.map({ .now() - $0 > .minutes(1) }) ?? true {
                warned = .now()
                logger.warning("connection limit reached: closing the longest-idle connection for each new one (this is logged once a minute)",
                               metadata: ["max_connections": "\(limit)"])
            }
            guard let victim else { return false }
            victim.close()
        }
        open[ObjectIdentifier(new)] = new
        return true
    }

    func remove(_ connection: ConnectionHandler) { open[ObjectIdentifier(connection)] = nil }

    func closeAll() { for connection in open.values { connection.close() } }
}

/// Sees a request's first bytes before the HTTP decoder does: its read timeout starts there.
private final class FirstBytes: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let connection: ConnectionHandler

    init(_ connection: ConnectionHandler) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.bytesArrived()
        context.fireChannelRead(data)
    }
}

/// One connection: reads a request, answers it, and only then reads the next.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase { case waiting, reading, answering, closing }
    private var phase = Phase.waiting
    private(set) var idleSince = NIODeadline.now()
    var isIdle: Bool { phase == .waiting || phase == .reading }

    private let shared: HTTPServer.Shared
    private let connections: Connections
    private var context: ChannelHandlerContext?
    private var request: (head: HTTPRequestHead, bodyBytes: Int)?
    /// Parts of pipelined requests the decoder had already read when a response was pending.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var readHeld = false
    private var timer: Scheduled<Void>?
    /// The last deadline handed to NIO: cancelling a task leaves NIO's timerfd set for it.
    private var armedDeadline: NIODeadline?
    /// When the request being read sent its first bytes (its read timeout counts from there).
    private var readStarted = NIODeadline.now()
    private var holdsRequestSlot = false
    private var closeAfterResponse = false

    init(shared: HTTPServer.Shared, connections: Connections) {
        self.shared = shared
        self.connections = connections
    }

    private var limits: ServerLimits { shared.limits }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard connections.admit(self, limit: limits.maxConnections, logger: shared.logger) else {
            phase = .closing
            context.close(promise: nil)
            return
        }
        arm(limits.readTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        phase = .closing
        timer?.cancel()
        timer = nil
        flushStaleTimer(before: .distantFuture, context)
        releaseRequestSlot()
        connections.remove(self)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closing
        releaseRequestSlot()
        context.fireChannelInactive()
    }

    func close() {
        phase = .closing
        context?.close(promise: nil)
    }

    // MARK: reading

    /// A request's first bytes. Its read timeout is armed only if the read that brought them
    /// did not bring the whole request (`channelReadComplete`): a scrape's request comes whole,
    /// and a timer set and cancelled for each would wake an idle exporter 10 s after the last.
    func bytesArrived() {
        if phase == .waiting {
            phase = .reading
            readStarted = .now()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if phase == .reading { arm(limits.readTimeout, from: readStarted) }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if phase == .answering || phase == .closing || !queued.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard phase != .closing else { return }
        if phase == .answering || !queued.isEmpty {
            queued.append(part)
            // bounded already by the 4 KiB reads; this only says so
            if queued.count > 1000 { close() }
            return
        }
        receive(part)
    }

    private func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            bytesArrived()
            request = (head, 0)
        case .body(let buffer):
            guard var r = request else { return }
            r.bodyBytes += buffer.readableBytes
            request = r
            if r.bodyBytes > limits.maxBodyBytes {
                request = nil
                phase = .answering
                answer(.text(413, "request body too large (at most \(limits.maxBodyBytes) bytes)"), to: r.head, close: true)
            }
        case .end:
            guard let r = request else { return }
            request = nil
            handle(r.head)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard error is HTTPParserError, phase == .waiting || phase == .reading else {
            // a broken TLS handshake, a reset, a second parser error: nothing more to say
            if phase == .answering && error is HTTPParserError { closeAfterResponse = true } else { close() }
            return
        }
        // not HTTP/1.1 (TLS to the plain port, HTTP/2, noise): one 400, then the connection closes
        phase = .answering
        answer(.text(400, "bad request"), to: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), close: true)
    }

    // MARK: answering

    private func handle(_ head: HTTPRequestHead) {
        phase = .answering
        timer?.cancel()
        let arrived = NIODeadline.now()
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let request = HTTPRequest(method: head.method.rawValue, path: path, headers: head.headers.map { ($0.name, $0.value) })
        guard !shared.open.contains(path), let auth = shared.auth else { return route(request, head) }
        switch auth.verdict(request.header("Authorization")) {
        case .allowed:
            route(request, head)
        case .denied:
            unauthorized(head, arrived)
        case .verify(let credentials):
            guard connections.loginsPending < limits.maxPendingLogins, let context else {
                var r = HTTPResponse.text(429, "too many password checks waiting; retry")
                r.headers = [("Retry-After", "1")]
                return refuse(r, head, arrived)
            }
            connections.loginsPending += 1
            shared.logins.runIfActive(eventLoop: context.eventLoop) { auth.check(credentials) }
                .assumeIsolated().whenComplete { result in
                    self.connections.loginsPending -= 1
                    guard self.phase == .answering else { return }
                    if case .success(true) = result { self.route(request, head) } else { self.unauthorized(head, arrived) }
                }
        }
    }

    private func unauthorized(_ head: HTTPRequestHead, _ arrived: NIODeadline) {
        var r = HTTPResponse.text(401, "unauthorized")
        r.headers = [("WWW-Authenticate", "Basic realm=\"irqscope\"")]
        refuse(r, head, arrived)
    }

    /// Answers a refused login once `refusalDelay` has passed since it arrived.
    private func refuse(_ response: HTTPResponse, _ head: HTTPRequestHead, _ arrived: NIODeadline) {
        guard let context else { return }
        let wait = arrived + limits.refusalDelay - .now()
        guard wait > .zero else { return answer(response, to: head) }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: wait) {
            if self.phase == .answering { self.answer(response, to: head) }
        }
    }

    private func route(_ request: HTTPRequest, _ head: HTTPRequestHead) {
        guard let handler = shared.route.withLock({ $0?.handle }) else { return answer(.text(503, "starting"), to: head) }
        if shared.open.contains(request.path) { return answer(handler(request), to: head) }
        if limits.maxRequests > 0 && connections.requestsInFlight >= limits.maxRequests {
            return answer(.text(503, "too many requests at once (--web.max-requests=\(limits.maxRequests)); retry"), to: head)
        }
        guard let context else { return }
        // the slot is the work's until it is done, even if its connection closes first: clients
        // that ask and hang up cannot queue more than maxRequests scrapes
        connections.requestsInFlight += 1
        let gzip = acceptsGzip(head.headers.first(name: "Accept-Encoding"))
        shared.work.runIfActive(eventLoop: context.eventLoop) { handler(request).encoded(gzip: gzip) }
            .assumeIsolated().whenComplete { result in
                guard self.phase == .answering else {
                    self.connections.requestsInFlight -= 1
                    return
                }
                self.holdsRequestSlot = true
                switch result {
                case .success(let response): self.answer(response, to: head)
                case .failure: self.answer(.text(503, "shutting down"), to: head, close: true)
                }
            }
    }

    private func releaseRequestSlot() {
        if holdsRequestSlot {
            holdsRequestSlot = false
            connections.requestsInFlight -= 1
        }
    }

    private func answer(_ response: HTTPResponse, to head: HTTPRequestHead, close: Bool = false) {
        guard let context else { return }
        let keepAlive = head.isKeepAlive && !close && !closeAfterResponse
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        var response = response
        if !response.isEncoded { response = response.encoded(gzip: acceptsGzip(head.headers.first(name: "Accept-Encoding"))) }
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let body = response.body
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let version = head.version.major == 1 ? head.version : .http1_1
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .init(statusCode: response.status), headers: headers))),
                      promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { result in
            self.written(keepAlive: keepAlive && (try? result.get()) != nil)
        }
        // a response the socket took whole is written already (and the connection waiting)
        if phase == .answering { arm(limits.writeTimeout) }
    }

    /// The response is in the kernel's hands: the connection may read its next request.
    private func written(keepAlive: Bool) {
        releaseRequestSlot()
        guard phase == .answering else { return }
        guard keepAlive, let context else { return close() }
        phase = .waiting
        idleSince = .now()
        arm(limits.idleTimeout)
        while phase == .waiting || phase == .reading, let part = queued.popFirst() { receive(part) }
        if queued.isEmpty && readHeld && (phase == .waiting || phase == .reading) {
            readHeld = false
            context.read()
        }
    }

    private func arm(_ delay: TimeAmount, from start: NIODeadline = .now()) {
        timer?.cancel()
        guard let context else { return }
        let deadline = start + delay
        flushStaleTimer(before: deadline, context)
        armedDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.close() }
    }

    /// NIO only ever moves its timerfd earlier: a cancelled timer due within a minute, before
    /// `deadline`, would wake the loop at its time for nothing (an idle exporter 10 s after its
    /// last scrape: the connection's first read timeout). A task due in a moment fires the
    /// timerfd now, and NIO then sets it for what is really left; one due already when the loop
    /// looks would run without touching the timerfd. Idle timeouts replacing each other are
    /// minutes away and not worth a wake-up per request.
    private func flushStaleTimer(before deadline: NIODeadline, _ context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        guard let armed = armedDeadline, armed < deadline, armed > now, armed < now + .seconds(60) else { return }
        armedDeadline = nil
        context.eventLoop.assumeIsolated().scheduleTask(in: .microseconds(100)) {}
    }
}
