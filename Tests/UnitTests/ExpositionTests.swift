import IrqscopeDecode
import IrqscopeModel
import IrqscopeRender
import Testing
import TestSupport

@Suite struct ExpositionTests {
    let families: [MetricFamily] = {
        var c = MetricFamily("irqscope_interrupts", .counter, help: "Interrupts.\nSecond line \\ slash")
        c.add([("irq", "36"), ("name", "virtio1-req.0"), ("device", "0000:00:02.0")], 51201)
        c.add([("irq", "40"), ("name", "we\"ird\\name\n"), ("device", "")], 0)
        let g = MetricFamily("irqscope_vector_space_reserved", .gauge, help: "Reserved.", samples: [.init([], 7)])
        let i = MetricFamily("irqscope_build", .info, help: "Build.", samples: [.init([("version", "0.1.0")], 1)])
        var h = MetricFamily("irqscope_window_seconds", .histogram, help: "Windows.")
        h.addHistogram([("guest", "alpha")], buckets: [(0.001, 2), (0.01, 5)], sum: 0.0321, count: 6)
        return [c, g, i, h]
    }()

    @Test func prometheusTextParsesBack() throws {
        let text = render(families, format: .prometheusText)
        let parsed = try parseExposition(text)
        #expect(!parsed.sawEOF)
        #expect(parsed.types["irqscope_interrupts_total"] == "counter")
        #expect(parsed.types["irqscope_build_info"] == "gauge")
        #expect(parsed.types["irqscope_window_seconds"] == "histogram")
        #expect(parsed.value("irqscope_interrupts_total", ["irq": "36"]) == 51201)
        #expect(parsed.value("irqscope_interrupts_total", ["irq": "40"]) == 0)
        #expect(parsed.values("irqscope_interrupts_total", where: ["irq": "40"]).first?.labels["name"] == "we\"ird\\name\n")
        #expect(parsed.value("irqscope_build_info", ["version": "0.1.0"]) == 1)
        #expect(parsed.value("irqscope_window_seconds_bucket", ["le": "+Inf"]) == 6)
        #expect(parsed.value("irqscope_window_seconds_bucket", ["le": "0.01"]) == 5)
        #expect(parsed.value("irqscope_window_seconds_count") == 6)
        #expect(parsed.value("irqscope_window_seconds_sum") == 0.0321)
        #expect(parsed.helps["irqscope_interrupts_total"] == "Interrupts.\\nSecond line \\\\ slash")
    }

    @Test func openMetricsNamesFamiliesWithoutSuffixAndEnds() throws {
        let text = render(families, format: .openMetrics)
        let parsed = try parseExposition(text)
        #expect(parsed.sawEOF)
        #expect(text.hasSuffix("# EOF\n"))
        #expect(parsed.types["irqscope_interrupts"] == "counter")
        #expect(parsed.types["irqscope_build"] == "info")
        #expect(parsed.value("irqscope_interrupts_total", ["irq": "36"]) == 51201)
        #expect(parsed.value("irqscope_build_info", ["version": "0.1.0"]) == 1)
    }

    @Test(arguments: [
        // Prometheus 2.42 (Debian 12) scrape Accept header
        ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", ExpositionFormat.openMetrics),
        // Prometheus 3 default
        ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", .openMetrics),
        ("*/*", .prometheusText),
        ("text/plain;version=0.0.4", .prometheusText),
        ("application/openmetrics-text;version=0.0.1", .prometheusText),
        ("application/openmetrics-text; version=1.0.0; q=0.2, text/plain; q=0.9", .prometheusText),
    ])
    func negotiation(accept: String, expected: ExpositionFormat) {
        #expect(ExpositionFormat.negotiate(accept: accept) == expected)
    }

    @Test func noAcceptHeaderMeansText() {
        #expect(ExpositionFormat.negotiate(accept: nil) == .prometheusText)
        #expect(ExpositionFormat.prometheusText.contentType.hasPrefix("text/plain; version=0.0.4"))
        #expect(ExpositionFormat.openMetrics.contentType.hasPrefix("application/openmetrics-text; version=1.0.0"))
    }
}

/// Per-irq series filters in node_exporter's convention: a search, not a whole-name match.
@Suite struct IRQSeriesFilterTests {
    func served(_ filter: IRQSeriesFilter) -> Set<String> {
        var model = HostModel()
        let irqs: [Int: IRQInfo] = [30: IRQInfo(name: "nvme0q1", device: "0000:00:04.0"), 31: IRQInfo(name: "eth0"),
                                    32: IRQInfo(name: "vfio-msix[0](0000:00:06.0)", device: "0000:00:06.0")]
        model.update(DeliverySnapshot(irqs: irqs.mapValues { _ in IRQCount(interrupts: 5, unhandled: 0) }), irqs: irqs)
        let families = HostMetrics.families(model, report: ProbeReport(families: [], kernel: []),
                                            build: .init(version: "v", libbpf: "l", kernel: "k"), scrapeSeconds: 0, irqs: filter)
        return Set(families.first { $0.name == "irqscope_interrupts" }?.samples.compactMap { s in s.labels.first { $0.0 == "name" }?.1 } ?? [])
    }

    @Test func includeExcludeAndNone() throws {
        #expect(served(.all) == ["nvme0q1", "eth0", "vfio-msix[0](0000:00:06.0)"])
        #expect(served(try IRQSeriesFilter(nameInclude: "^nvme|eth")) == ["nvme0q1", "eth0"])
        #expect(served(try IRQSeriesFilter(nameExclude: "vfio")) == ["nvme0q1", "eth0"])
        #expect(served(try IRQSeriesFilter(deviceInclude: "^0000:00:0[46]")) == ["nvme0q1", "vfio-msix[0](0000:00:06.0)"])
        #expect(served(try IRQSeriesFilter(deviceExclude: ".")) == ["eth0"], "an irq of no device has an empty address")
        #expect(served(try IRQSeriesFilter(perIRQ: false)).isEmpty)
        #expect(throws: IRQSeriesFilter.Invalid.self) { try IRQSeriesFilter(nameInclude: "a", nameExclude: "b") }
        #expect(throws: IRQSeriesFilter.Invalid.self) { try IRQSeriesFilter(nameInclude: "(") }
    }
}
