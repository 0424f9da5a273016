import Foundation

public struct Finished: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a command to completion (killed after `timeout` seconds).
@discardableResult
public func run(_ arguments: [String], timeout: Double = 120, environment: [String: String]? = nil) throws -> Finished {
    let p = try Running(arguments, environment: environment)
    return p.wait(timeout: timeout)
}

/// A background process whose output is collected; `stop` sends a signal and waits.
public final class Running: @unchecked Sendable {
    public let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    private var outData = Data()
    private var errData = Data()
    private let lock = NSLock()

    public init(_ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : try which(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.withLock { self?.outData.append(d) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.withLock { self?.errData.append(d) }
        }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }

    public var stderrSoFar: String { lock.withLock { String(decoding: errData, as: UTF8.self) } }
    public var stdoutSoFar: String { lock.withLock { String(decoding: outData, as: UTF8.self) } }

    public func wait(timeout: Double) -> Finished {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        let restOut = out.fileHandleForReading.readDataToEndOfFile()
        let restErr = err.fileHandleForReading.readDataToEndOfFile()
        return lock.withLock {
            outData.append(restOut)
            errData.append(restErr)
            return Finished(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                            stderr: String(decoding: errData, as: UTF8.self))
        }
    }

    public func stop(signal: Int32 = SIGTERM, timeout: Double = 10) -> Finished {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return wait(timeout: timeout)
    }
}

public func which(_ name: String) throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    for dir in ["/usr/sbin", "/sbin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return "\(dir)/\(name)"
    }
    throw ExpositionError(description: "\(name) not found in PATH")
}

/// The package root, from this file's location.
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The irqscope under test: IRQSCOPE_BIN, else the release build (what users run), else debug.
public var irqscopeBinary: String {
    if let b = ProcessInfo.processInfo.environment["IRQSCOPE_BIN"] { return b }
    let release = packageRoot + "/.build/release/irqscope"
    return FileManager.default.isExecutableFile(atPath: release) ? release : packageRoot + "/.build/debug/irqscope"
}

/// An HTTP GET with curl: (status, headers, body).
public func httpGet(_ url: String, headers: [String] = []) throws -> (status: Int, headers: String, body: String) {
    let headerFile = NSTemporaryDirectory() + "irqscope-headers-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: headerFile) }
    var args = ["curl", "-s", "-S", "--max-time", "20", "-D", headerFile, "-o", "-", "-w", "\n%{http_code}"]
    for h in headers { args += ["-H", h] }
    args.append(url)
    let r = try run(args, timeout: 30)
    guard r.status == 0 else { throw ExpositionError(description: "curl \(url) failed: \(r.stderr)") }
    var body = r.stdout
    let statusLine = body.split(separator: "\n").last.map(String.init) ?? "0"
    // thrown, not trapped: a test process that crashes here leaves the irqscope it started
    // running, its BPF programs attached (seen once under load: curl exited 0 with no output)
    guard body.hasSuffix(statusLine) else { throw ExpositionError(description: "curl \(url): no status in \(body.prefix(80))") }
    body.removeLast(statusLine.count)
    if body.hasSuffix("\n") { body.removeLast() }
    let h = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
    return (Int(statusLine) ?? 0, h, body)
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { s in
            _ = bind(fd, s, len)
            _ = getsockname(fd, s, &len)
        }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// YAML read by PyYAML (a Debian package `make deps` installs), as JSON objects: tests do not
/// trust a YAML reader of the project's own.
public func yamlValue(_ path: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(try pyYAML("yaml.safe_load(open(sys.argv[1]))", path).utf8))
}

/// Every document of a multi-document YAML file.
public func yamlDocuments(_ path: String) throws -> [[String: Any]] {
    try JSONSerialization.jsonObject(with: Data(try pyYAML("list(yaml.safe_load_all(open(sys.argv[1])))", path).utf8)) as? [[String: Any]] ?? []
}

private func pyYAML(_ expr: String, _ path: String) throws -> String {
    let r = try run(["python3", "-c", "import json, sys, yaml; json.dump(\(expr), sys.stdout)", path])
    guard r.status == 0 else { throw ExpositionError(description: "python3 yaml \(path): \(r.stderr)") }
    return r.stdout
}

/// Runs a command to its end with stdout to a file; its exit status and peak resident memory.
public func runMeasured(_ arguments: [String], stdout: String) throws -> (status: Int32, maxRSSKiB: Int) {
    var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var pid: pid_t = 0
    var argv = arguments.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    let rc = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
    guard rc == 0 else { throw ExpositionError(description: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, usage.ru_maxrss)
}
