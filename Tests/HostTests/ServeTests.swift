import Foundation
import Testing
import TestSupport

extension Host {
    @Suite struct Serve {
        /// The increase of irqscope_interrupts_total for the busiest virtio irq under disk load
        /// agrees with /proc/interrupts within 1%.
        @Test func interruptCountsMatchProcInterrupts() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let load = try DiskLoad()
            defer { load.stop() }
            // the busiest irq over one second of load, by the kernel's own count
            let p0 = try procInterrupts()
            sleep(1)
            let p1 = try procInterrupts()
            func increase(_ irq: Int) -> UInt64 { p1[irq]! - (p0[irq] ?? 0) }
            let virtio = p1.keys.filter {
                ((try? String(contentsOfFile: "/sys/kernel/irq/\($0)/actions", encoding: .utf8)) ?? "").contains("virtio")
            }
            let busiest = (virtio.isEmpty ? Array(p1.keys) : virtio).max { increase($0) < increase($1) }!
            let rate = increase(busiest)
            #expect(rate > 1000, "disk load raised only \(rate) interrupts/s on irq \(busiest)")

            func both() throws -> (proc: Double, ours: Double) {
                let before = try procInterrupts()[busiest]!
                let ours = try HostEnv.scrape(port).value("irqscope_interrupts_total", ["irq": String(busiest)])
                let after = try procInterrupts()[busiest]!
                return (Double(before + after) / 2, ours ?? -1)
            }
            let a = try both()
            sleep(5)
            let b = try both()
            let procDelta = b.proc - a.proc, ourDelta = b.ours - a.ours
            #expect(a.ours >= 0, "irq \(busiest) has no irqscope_interrupts_total series")
            #expect(procDelta > 5000)
            #expect(abs(ourDelta - procDelta) / procDelta < 0.01,
                    "irq \(busiest): irqscope +\(ourDelta), /proc/interrupts +\(procDelta)")
            let series = try HostEnv.scrape(port).values("irqscope_interrupts_total", where: ["irq": String(busiest)])
            let name = try String(contentsOfFile: "/sys/kernel/irq/\(busiest)/actions", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(series.first?.labels["name"] == name)
            let msiDevice = try FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices").first {
                FileManager.default.fileExists(atPath: "/sys/bus/pci/devices/\($0)/msi_irqs/\(busiest)")
            }
            #expect(series.first?.labels["device"] == (msiDevice ?? ""))
        }

        @Test func promtoolAcceptsRealOutput() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let body = try httpGet("http://127.0.0.1:\(port)/metrics").body
            let file = NSTemporaryDirectory() + "irqscope-metrics-\(UUID().uuidString).txt"
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let r = try run(["/bin/sh", "-c", "promtool check metrics < '\(file)'"])
            #expect(r.status == 0, "promtool: \(r.stdout)\(r.stderr)")
        }

        /// Both formats as the reference client library's parsers read them (Debian's
        /// python3-prometheus-client), and OpenMetrics' escaped-string rule, which that parser does
        /// not enforce: in HELP a quote or backslash appears only escaped (`\\`, `\"`, `\n`).
        @Test func strictParsersAcceptBothFormats() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let accept = ["openmetrics": "application/openmetrics-text;version=1.0.0", "text": "text/plain;version=0.0.4"]
            for (format, header) in accept {
                let body = try httpGet("http://127.0.0.1:\(port)/metrics", headers: ["Accept: \(header)"]).body
                let file = NSTemporaryDirectory() + "irqscope-\(format)-\(UUID().uuidString).txt"
                try body.write(toFile: file, atomically: true, encoding: .utf8)
                defer { try? FileManager.default.removeItem(atPath: file) }
                let parser = format == "openmetrics" ? "prometheus_client.openmetrics.parser" : "prometheus_client.parser"
                let r = try run(["/usr/bin/python3", "-c", """
                    import sys, importlib
                    p = importlib.import_module(sys.argv[1])
                    families = list(p.text_string_to_metric_families(open(sys.argv[2]).read()))
                    print(len(families), sum(len(f.samples) for f in families))
                    """, parser, file])
                #expect(r.status == 0, "\(format): \(r.stderr.suffix(600))")
                let counts = r.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                #expect(counts.count == 2 && counts[0] > 20 && counts[1] > 50, "\(format): families and samples \(r.stdout)")
                guard format == "openmetrics" else { continue }
                for line in body.split(separator: "\n") where line.hasPrefix("# HELP ") {
                    var chars = line.dropFirst(7).drop { $0 != " " }.dropFirst().makeIterator()
                    while let c = chars.next() {
                        if c == "\"" { Issue.record("unescaped quote in \(line.prefix(60))"); break }
                        if c == "\\", let next = chars.next(), !["\\", "n", "\""].contains(next) {
                            Issue.record("bad escape \\\(next) in \(line.prefix(60))"); break
                        }
                    }
                }
            }
        }

        /// gzip as Prometheus asks for it: the body inflates (gzip -d, not irqscope) to the
        /// same families an uncompressed scrape has; without the header, or with q=0, none.
        @Test func gzipWhenAskedForOnly() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let url = "http://127.0.0.1:\(port)/metrics"
            let file = NSTemporaryDirectory() + "irqscope-gz-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let r = try run(["curl", "-s", "-S", "-D", file + ".headers", "-o", file, "-H", "Accept-Encoding: gzip", url])
            #expect(r.status == 0)
            let headers = try String(contentsOfFile: file + ".headers", encoding: .utf8).lowercased()
            defer { try? FileManager.default.removeItem(atPath: file + ".headers") }
            #expect(headers.contains("content-encoding: gzip") && headers.contains("vary: accept-encoding"), "\(headers)")
            let inflated = try run(["gzip", "-dc", file])
            #expect(inflated.status == 0, "gzip -d: \(inflated.stderr)")
            let plain = try httpGet(url)
            #expect(!plain.headers.lowercased().contains("content-encoding"), "\(plain.headers)")
            let families = { (text: String) in Set(try parseExposition(text).samples.map(\.name)) }
            #expect(try families(inflated.stdout) == families(plain.body))
            let compressed = try Data(contentsOf: URL(fileURLWithPath: file)).count
            #expect(compressed * 4 < plain.body.utf8.count, "gzip: \(compressed) bytes for \(plain.body.utf8.count)")
            let refused = try httpGet(url, headers: ["Accept-Encoding: gzip;q=0, identity"])
            #expect(!refused.headers.lowercased().contains("content-encoding"), "\(refused.headers)")
        }

        /// The per-irq filters as flags: names taken from the kernel's /sys/kernel/irq/N/actions.
        @Test func perIRQSeriesFollowTheFilters() throws {
            let names = Set(try FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/irq").compactMap { irq in
                (try? String(contentsOfFile: "/sys/kernel/irq/\(irq)/actions", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            }.filter { !$0.isEmpty })
            let chosen = try #require(names.sorted().first, "no irq with an action on this host")
            let pattern = "^" + NSRegularExpression.escapedPattern(for: chosen) + "$"
            let (only, port) = try HostEnv.serve(["--collector.irq.name-include", pattern])
            let served = try HostEnv.scrape(port).samples.filter { $0.name == "irqscope_interrupts_total" }
            _ = only.stop()
            #expect(!served.isEmpty && served.allSatisfy { $0.labels["name"] == chosen }, "name-include \(pattern): \(served.map { $0.labels["name"] ?? "" })")
            let (none, port2) = try HostEnv.serve(["--no-collector.irq.per-irq"])
            let m = try HostEnv.scrape(port2)
            _ = none.stop()
            #expect(!m.samples.contains { $0.name.hasPrefix("irqscope_interrupts_total") || $0.name.hasPrefix("irqscope_interrupts_unhandled_total") })
            #expect(m.samples.contains { $0.name == "irqscope_build_info" })
        }

        @Test func aPrometheusServerScrapesIt() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let prom = try PrometheusScraper(target: "127.0.0.1:\(port)")
            defer { prom.stop() }
            let up = prom.eventually("up{job=\"irqscope\"} == 1")
            let series = prom.eventually("irqscope_interrupts_total")
            let rate = prom.eventually("sum(rate(irqscope_interrupts_total[10s]))")
            #expect(!up.isEmpty, "target never up; prometheus said: \(prom.log.suffix(800))")
            #expect(!series.isEmpty, "PromQL over irqscope_interrupts_total returned nothing")
            #expect(rate.count == 1, "rate() over two scrapes returned nothing")
        }

        @Test func routesAndOpenMetricsNegotiation() throws {
            let (server, port) = try HostEnv.serve(["--web.telemetry-path=/irq-metrics"])
            defer { _ = server.stop() }
            let base = "http://127.0.0.1:\(port)"
            let text = try httpGet(base + "/irq-metrics")
            #expect(text.status == 200)
            #expect(text.headers.lowercased().contains("content-type: text/plain; version=0.0.4"))
            #expect(!text.body.contains("# EOF"))
            let om = try httpGet(base + "/irq-metrics", headers: ["Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"])
            #expect(om.headers.lowercased().contains("content-type: application/openmetrics-text; version=1.0.0"))
            #expect(om.body.hasSuffix("# EOF\n"))
            #expect(om.body.contains("# TYPE irqscope_interrupts counter"))
            let landing = try httpGet(base + "/")
            #expect(landing.status == 200 && landing.body.contains("href=\"/irq-metrics\""))
            #expect(try httpGet(base + "/healthz").body == "ok\n")
            #expect(try httpGet(base + "/metrics").status == 404)
        }

        @Test func listensOnEveryAddressGiven() throws {
            let second = freePort()
            let (server, port) = try HostEnv.serve(["--web.listen-address=127.0.0.1:\(second)"])
            defer { _ = server.stop() }
            #expect(try httpGet("http://127.0.0.1:\(port)/healthz").status == 200)
            #expect(try httpGet("http://127.0.0.1:\(second)/healthz").status == 200)
        }

        /// The probe metrics say what doctor says, and the self metrics are there.
        @Test func probeAndSelfMetrics() throws {
            let doctor = try run([HostEnv.binary, "doctor", "--json"])
            let json = try JSONSerialization.jsonObject(with: Data(doctor.stdout.utf8)) as? [String: Any] ?? [:]
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let m = try HostEnv.scrape(port)
            for f in json["families"] as? [[String: Any]] ?? [] {
                let name = f["name"] as? String ?? ""
                #expect(m.value("irqscope_probe_family_available", ["family": name]) == ((f["available"] as? Bool ?? false) ? 1 : 0))
                for h in f["hooks"] as? [[String: Any]] ?? [] {
                    let hook = h["name"] as? String ?? ""
                    switch h["state"] as? String {
                    case "attached":
                        #expect(m.value("irqscope_probe_attached", ["probe": hook, "mechanism": h["mechanism"] as? String ?? ""]) == 1)
                    case "unavailable":
                        #expect(m.value("irqscope_probe_attached", ["probe": hook, "mechanism": "none"]) == 0)
                    default:
                        #expect(m.values("irqscope_probe_attached", where: ["probe": hook]).isEmpty)
                    }
                }
            }
            for name in ["irqscope_events_received_total", "irqscope_events_dropped_total", "irqscope_scrape_duration_seconds",
                         "irqscope_interrupts_untracked_total"] {
                #expect(m.value(name) != nil, "\(name) missing")
            }
            #expect(m.value("irqscope_events_dropped_total") == 0)
            let build = m.values("irqscope_build_info")
            let release = try run(["uname", "-r"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(build.count == 1 && build.first?.labels["kernel"] == release)
        }

        /// Move NIC irqs to another CPU (the test knows what it moved; /proc says where they
        /// landed): the per-CPU vector gauges follow, and the online CPU count is the kernel's.
        @Test func vectorSpaceFollowsIrqMoves() throws {
            let (server, port) = try HostEnv.serve()
            defer { _ = server.stop() }
            let online = try String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8)
            let cpus = cpuList(online)
            try #require(cpus.count >= 2, "needs two online CPUs to move an irq")
            let movable = try movableIrqs()
            try #require(movable.count >= 2, "needs two movable (non-managed) irqs with traffic")
            let original = try movable.map { ($0, try affinity($0)) }
            defer { for (irq, mask) in original { try? mask.write(toFile: "/proc/irq/\(irq)/smp_affinity_list", atomically: false, encoding: .utf8) } }

            // first move: some CPU's vector counts become known
            let (a, b) = (movable[0], movable[1])
            let target = cpus.first { $0 != (try? effectiveCPU(a)) }!
            try moveAndWait(a, to: target)
            var m = try HostEnv.scrape(port)
            #expect(m.value("irqscope_vector_space_online_cpus") == Double(cpus.count))
            let before = try #require(m.value("irqscope_cpu_vectors_allocated", ["cpu": String(target)]))
            let totalBefore = try #require(m.value("irqscope_vector_space_allocated"))

            // second move onto the same CPU: exactly one more vector there, same total
            if try effectiveCPU(b) == target { try moveAndWait(b, to: cpus.first { $0 != target }!) }
            m = try HostEnv.scrape(port)
            let base = m.value("irqscope_cpu_vectors_allocated", ["cpu": String(target)]) ?? before
            try moveAndWait(b, to: target)
            var after: Double?
            for _ in 0..<20 {   // the old vector is freed after the first interrupt on the new one
                m = try HostEnv.scrape(port)
                after = m.value("irqscope_cpu_vectors_allocated", ["cpu": String(target)])
                if after == base + 1 && m.value("irqscope_vector_space_allocated") == totalBefore { break }
                usleep(200_000)
            }
            #expect(after == base + 1, "cpu \(target): allocated \(String(describing: after)), expected \(base + 1)")
            #expect(m.value("irqscope_vector_space_allocated") == totalBefore, "a move allocates one vector and frees one")
        }
    }
}

func cpuList(_ text: String) -> [Int] {
    text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").flatMap { part -> [Int] in
        let r = part.split(separator: "-").compactMap { Int($0) }
        return r.count == 2 ? Array(r[0]...r[1]) : r
    }
}

func affinity(_ irq: Int) throws -> String {
    try String(contentsOfFile: "/proc/irq/\(irq)/smp_affinity_list", encoding: .utf8)
}

func effectiveCPU(_ irq: Int) throws -> Int {
    cpuList(try String(contentsOfFile: "/proc/irq/\(irq)/effective_affinity_list", encoding: .utf8)).first ?? -1
}

/// The irqs of the network devices' PCI functions, except config vectors: traffic to the
/// gateway makes them fire. Only those whose affinity can be written (not managed).
func movableIrqs() throws -> [Int] {
    var irqs: [Int] = []
    for net in try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net") {
        guard var dir = try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/class/net/\(net)/device") else { continue }
        dir = URL(fileURLWithPath: "/sys/class/net/\(net)").appendingPathComponent(dir).standardizedFileURL.path
        // virtio devices hang below their PCI function: walk up to the msi_irqs
        while !FileManager.default.fileExists(atPath: dir + "/msi_irqs") && dir.count > "/sys/devices".count {
            dir = (dir as NSString).deletingLastPathComponent
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/msi_irqs")) ?? [] {
            guard let irq = Int(entry) else { continue }
            let name = (try? String(contentsOfFile: "/sys/kernel/irq/\(irq)/actions", encoding: .utf8)) ?? ""
            guard !name.isEmpty, !name.contains("config") else { continue }
            let mask = (try? affinity(irq)) ?? ""
            if (try? mask.write(toFile: "/proc/irq/\(irq)/smp_affinity_list", atomically: false, encoding: .utf8)) != nil {
                irqs.append(irq)
            }
        }
    }
    return irqs.sorted()
}

/// Sets the affinity and makes traffic until the kernel has actually moved the vector.
func moveAndWait(_ irq: Int, to cpu: Int) throws {
    try "\(cpu)".write(toFile: "/proc/irq/\(irq)/smp_affinity_list", atomically: false, encoding: .utf8)
    let gateway = (try? run(["/bin/sh", "-c", "ip route | awk '/default/{print $3; exit}'"]).stdout
        .trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
    for _ in 0..<50 {
        if try effectiveCPU(irq) == cpu { return }
        for _ in 0..<3 { _ = try? run(["curl", "-s", "-m", "1", "http://\(gateway)/"], timeout: 3) }
    }
    throw ExpositionError(description: "irq \(irq) did not move to CPU \(cpu)")
}
