/// Metric families built at scrape time and written in the Prometheus text format 0.0.4 or
/// OpenMetrics 1.0.0. swift-prometheus was not used: it has no OpenMetrics output and cannot
/// set a counter or histogram bucket to a value the kernel counted.
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable { case counter, gauge, histogram, info }

    /// Name without the `_total` (counters) or `_info` (info) suffix.
    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public init(_ name: String, _ kind: Kind, help: String, samples: [Sample] = []) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }

    public struct Sample: Sendable, Equatable {
        public var labels: [(String, String)]
        public var value: Double
        /// Histograms: `_bucket` / `_sum` / `_count`; empty otherwise.
        public var suffix: String

        public init(_ labels: [(String, String)] = [], _ value: Double, suffix: String = "") {
            self.labels = labels
            self.value = value
            self.suffix = suffix
        }

        public static func == (a: Sample, b: Sample) -> Bool {
            a.value == b.value && a.suffix == b.suffix && a.labels.elementsEqual(b.labels, by: ==)
        }
    }

    public mutating func add(_ labels: [(String, String)], _ value: Double) {
        samples.append(Sample(labels, value))
    }

    /// A histogram from cumulative bucket counts (upper bound -> count of values <= bound).
    public mutating func addHistogram(_ labels: [(String, String)], buckets: [(Double, UInt64)], sum: Double, count: UInt64) {
        for (bound, n) in buckets {
            samples.append(Sample(labels + [("le", formatValue(bound))], Double(n), suffix: "_bucket"))
        }
        samples.append(Sample(labels + [("le", "+Inf")], Double(count), suffix: "_bucket"))
        samples.append(Sample(labels, sum, suffix: "_sum"))
        samples.append(Sample(labels, Double(count), suffix: "_count"))
    }
}

public enum ExpositionFormat: Sendable, Equatable {
    case prometheusText
    case openMetrics

    public var contentType: String {
        switch self {
        case .prometheusText: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// Picks OpenMetrics 1.0.0 when the Accept header ranks it at least as high as the text
    /// format, as Prometheus' own scrape Accept does; the text format otherwise.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept else { return .prometheusText }
        var openMetrics = -1.0, text = -1.0
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmed() }
            guard let type = parts.first?.lowercased() else { continue }
            var q = 1.0
            var version: String?
            for p in parts.dropFirst() {
                let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmed() }
                guard kv.count == 2 else { continue }
                if kv[0] == "q" { q = Double(kv[1]) ?? 0 }
                if kv[0] == "version" { version = kv[1] }
            }
            if type == "application/openmetrics-text" && (version == nil || version == "1.0.0") {
                openMetrics = max(openMetrics, q)
            } else if type == "text/plain" || type == "*/*" || type == "text/*" {
                text = max(text, q)
            }
        }
        return openMetrics > 0 && openMetrics >= text ? .openMetrics : .prometheusText
    }
}

extension Substring {
    func trimmed() -> String {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

public func render(_ families: [MetricFamily], format: ExpositionFormat) -> String {
    String(decoding: renderBytes(families, format: format), as: UTF8.self)
}

/// The exposition as the bytes that go out. Written byte by byte rather than through `String`,
/// whose appends were a fifth of a scrape's CPU.
public func renderBytes(_ families: [MetricFamily], format: ExpositionFormat) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(families.reduce(0) { $0 + $1.samples.count * 96 + $1.help.utf8.count + 64 })
    func put(_ s: String) { out.append(contentsOf: s.utf8) }
    for family in families {
        let sampleName: String
        switch family.kind {
        case .counter: sampleName = family.name + "_total"
        case .info: sampleName = family.name + "_info"
        case .gauge, .histogram: sampleName = family.name
        }
        let typeName: String
        let headerName: String
        switch format {
        case .prometheusText:
            // 0.0.4 has no info type and names counters with their suffix.
            typeName = family.kind == .info ? "gauge" : family.kind.rawValue
            headerName = family.kind == .histogram || family.kind == .gauge ? family.name : sampleName
        case .openMetrics:
            typeName = family.kind.rawValue
            headerName = family.name
        }
        put("# HELP "); put(headerName); out.append(UInt8(ascii: " "))
        putEscaped(family.help, quote: format == .openMetrics, into: &out)
        put("\n# TYPE "); put(headerName); out.append(UInt8(ascii: " ")); put(typeName); out.append(UInt8(ascii: "\n"))
        for sample in family.samples {
            put(sampleName); put(sample.suffix)
            if !sample.labels.isEmpty {
                out.append(UInt8(ascii: "{"))
                for (i, (k, v)) in sample.labels.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    put(k); out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "\""))
                    putEscaped(v, quote: true, into: &out)
                    out.append(UInt8(ascii: "\""))
                }
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: " "))
            putValue(sample.value, into: &out)
            out.append(UInt8(ascii: "\n"))
        }
    }
    if format == .openMetrics { put("# EOF\n") }
    return out
}

/// formatValue's text, integers written digit by digit (nearly every value is one).
private func putValue(_ v: Double, into out: inout [UInt8]) {
    guard v == v.rounded(), abs(v) < 1e15 else { return out.append(contentsOf: formatValue(v).utf8) }
    var n = Int64(v)
    if n < 0 { out.append(UInt8(ascii: "-")); n = -n }
    let start = out.count
    repeat {
        out.append(UInt8(ascii: "0") + UInt8(n % 10))
        n /= 10
    } while n > 0
    out[start...].reverse()
}

func formatValue(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return String(v)
}

/// Label values escape backslash, quote and newline. HELP text does the same in OpenMetrics
/// (its escaped-string has no bare quote), and leaves quotes alone in text 0.0.4, where `\"`
/// would be read as a backslash and a quote.
private func putEscaped(_ s: String, quote: Bool, into out: inout [UInt8]) {
    var s = s
    // a plain loop over the bytes: String.UTF8View.contains(where:) was 3% of a scrape
    s.withUTF8 { bytes in
        var clean = true
        for b in bytes where b == UInt8(ascii: "\\") || b == UInt8(ascii: "\n") || (quote && b == UInt8(ascii: "\"")) {
            clean = false
            break
        }
        // nearly every value has nothing to escape: copied whole
        guard !clean else { return out.append(contentsOf: bytes) }
        for b in bytes {
            switch b {
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\"") where quote: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            default: out.append(b)
            }
        }
    }
}
