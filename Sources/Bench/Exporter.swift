import Glibc
import IrqscopeHost

/// One exporter process under measurement: started, scraped, read from /proc, stopped.
final class Exporter {
    let name: String
    /// The counter both expose per irq (node_exporter per irq and CPU).
    let interruptSeries: String
    private let argv: (Int) -> [String]
    private(set) var pid: pid_t = 0
    private(set) var port = 0
    private(set) var connection: HTTPConnection?

    init(name: String, interruptSeries: String, argv: @escaping (Int) -> [String]) {
        self.name = name
        self.interruptSeries = interruptSeries
        self.argv = argv
    }

    /// Starts it and waits for the first 200 on /metrics; returns the seconds from exec to then.
    @discardableResult
    func start(log: String) throws -> Double {
        port = try freePort()
        let started = now()
        pid = try spawn(argv(port), output: log)
        let connection = HTTPConnection(port: port)
        let deadline = started + 30
        while now() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw BenchError("\(name) exited during start-up (status \(status)); see \(log)")
            }
            if let r = connection.get("/metrics"), r.status == 200 {
                let elapsed = now() - started
                connection.close()
                self.connection = HTTPConnection(port: port)
                return elapsed
            }
            connection.close()
            usleep(500)
        }
        throw BenchError("\(name) did not answer /metrics within 30 s; see \(log)")
    }

    /// SIGTERM, and the seconds until the process is reaped.
    @discardableResult
    func stop() -> Double {
        guard pid > 0 else { return 0 }
        connection?.close()
        connection = nil
        let started = now()
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
        return now() - started
    }

    /// What Prometheus 3 sends with a scrape.
    static func prometheusHeaders(gzip: Bool = true) -> [String] {
        [
            "User-Agent: Prometheus/3.0.0",
            "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "X-Prometheus-Scrape-Timeout-Seconds: 10",
        ] + (gzip ? ["Accept-Encoding: gzip"] : [])
    }

    /// A scrape as Prometheus sends it, on the kept-alive connection.
    func scrape(gzip: Bool = true) throws -> HTTPConnection.Response {
        guard let r = connection?.get("/metrics", headers: Self.prometheusHeaders(gzip: gzip)), r.status == 200 else {
            throw BenchError("\(name): a scrape failed")
        }
        return r
    }

    /// utime + stime of every thread so far, in seconds.
    func cpuSeconds() -> Double {
        // fields after the command's closing parenthesis: state is 3, utime 14, stime 15
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
    }

    /// Context switches, voluntary and not, per thread alive now.
    func contextSwitches() -> [String: Int] {
        var out: [String: Int] = [:]
        for task in listDirectory("/proc/\(pid)/task") {
            out[task] = (readFile("/proc/\(pid)/task/\(task)/status") ?? "").split(separator: "\n").reduce(0) { s, line in
                line.contains("ctxt_switches:") ? s + (Int(line.split(separator: "\t").last ?? "") ?? 0) : s
            }
        }
        return out
    }

    func threads() -> Int { listDirectory("/proc/\(pid)/task").count }

    /// Resident set in bytes.
    func rss() -> Int {
        let line = (readFile("/proc/\(pid)/status") ?? "").split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        let kb = line?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kb * 1024
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A port nothing listens on now: the kernel's pick for a socket bound to port 0.
func freePort() throws -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, length) == 0 && getsockname(s, $0, &length) == 0 }
    }
    guard ok else { throw BenchError("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// argv[0] must be a path; stdout and stderr go to `output`.
func spawn(_ argv: [String], output: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var child: pid_t = 0
    var cargs = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    let rc = posix_spawn(&child, argv[0], &actions, nil, &cargs, environ)
    guard rc == 0 else { throw BenchError("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
    return child
}
