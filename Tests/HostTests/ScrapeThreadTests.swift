import Foundation
import Testing
import TestSupport

extension Host {
    /// Issue 13: the scrape (counters, sysfs, rendering, gzip) runs on a thread pool, never on the
    /// NIO event loop, which then only parses requests and writes answers. The kernel's own
    /// accounting says which thread spent the CPU: utime + stime of each of the server's threads
    /// (/proc/PID/task/TID/stat), named by NIO ("NIO-ELT-…" for the loop, "TP-#…" for pools).
    @Suite struct ScrapeThreads {
        @Test func scrapesRunOffTheEventLoop() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let pid = server.process.processIdentifier
            let before = try threadTicks(pid)
            // 600 scrapes as Prometheus asks for them, over one kept-alive connection
            let r = try run(["curl", "-s", "-S", "-o", "/dev/null", "-H", "Accept-Encoding: gzip",
                             "-H", "Accept: application/openmetrics-text;version=1.0.0",
                             "http://127.0.0.1:\(port)/metrics?n=[1-600]"], timeout: 300)
            #expect(r.status == 0, "curl: \(r.stderr)")
            let after = try threadTicks(pid)
            func spent(_ prefix: String) -> Int {
                after.filter { $0.key.name.hasPrefix(prefix) }.reduce(0) { $0 + $1.value - (before[$1.key] ?? 0) }
            }
            let loop = spent("NIO-ELT"), pool = spent("TP-")
            print("CPU ticks over 600 scrapes: thread pool \(pool), event loop \(loop)")
            #expect(after.keys.contains { $0.name.hasPrefix("NIO-ELT") }, "no event-loop thread: \(after.keys.map(\.name).sorted())")
            // each scrape costs the pool about 1 ms: 600 are 60 ticks of 10 ms; the loop's share of
            // a scrape is its HTTP parsing and the write
            #expect(pool >= 15 && loop * 2 < pool, "CPU ticks over 600 scrapes: thread pool \(pool), event loop \(loop)")
        }
    }
}

struct ThreadKey: Hashable {
    var tid: Int
    var name: String
}

/// utime + stime (clock ticks) of each thread of `pid`, from the kernel's per-task stat.
func threadTicks(_ pid: Int32) throws -> [ThreadKey: Int] {
    var out: [ThreadKey: Int] = [:]
    for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
        guard let tid = Int(task),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
        let name = String(stat[stat.index(after: open)..<close])
        // after the name: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
        // majflt, cmajflt, utime, stime
        let f = stat[stat.index(after: close)...].split(separator: " ")
        guard f.count > 12, let user = Int(f[11]), let system = Int(f[12]) else { continue }
        out[ThreadKey(tid: tid, name: name)] = user + system
    }
    return out
}
