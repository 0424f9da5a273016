/// Which per-irq series a scrape carries, in node_exporter's convention for its interrupts
/// collector (--collector.interrupts.name-include/-exclude): include and exclude are regular
/// expressions searched in the irq's name (its actions) or PCI address, and exclusive of each
/// other. Per-device and per-guest series are never filtered: they are what a fleet needs.
public final class IRQSeriesFilter: @unchecked Sendable { // the regexes are immutable once built
    let nameInclude: Regex<AnyRegexOutput>?
    let nameExclude: Regex<AnyRegexOutput>?
    let deviceInclude: Regex<AnyRegexOutput>?
    let deviceExclude: Regex<AnyRegexOutput>?
    /// false: no irqscope_interrupts_total / _unhandled_total series at all.
    let perIRQ: Bool

    public static let all = IRQSeriesFilter()

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(nameInclude: String? = nil, nameExclude: String? = nil, deviceInclude: String? = nil,
                deviceExclude: String? = nil, perIRQ: Bool = true) throws(Invalid) {
        if nameInclude != nil && nameExclude != nil { throw Invalid(description: "name-include and name-exclude exclude each other") }
        if deviceInclude != nil && deviceExclude != nil { throw Invalid(description: "device-include and device-exclude exclude each other") }
        func compile(_ flag: String, _ pattern: String?) throws(Invalid) -> Regex<AnyRegexOutput>? {
            guard let pattern else { return nil }
            do { return try Regex(pattern) } catch { throw Invalid(description: "\(flag): not a regular expression: \(pattern)") }
        }
        self.nameInclude = try compile("name-include", nameInclude)
        self.nameExclude = try compile("name-exclude", nameExclude)
        self.deviceInclude = try compile("device-include", deviceInclude)
        self.deviceExclude = try compile("device-exclude", deviceExclude)
        self.perIRQ = perIRQ
    }

    private convenience init() { try! self.init(perIRQ: true) }

    func keeps(name: String, device: String?) -> Bool {
        guard perIRQ else { return false }
        if let r = nameInclude, (try? r.firstMatch(in: name)) == nil { return false }
        if let r = nameExclude, (try? r.firstMatch(in: name)) != nil { return false }
        let address = device ?? ""
        if let r = deviceInclude, (try? r.firstMatch(in: address)) == nil { return false }
        if let r = deviceExclude, (try? r.firstMatch(in: address)) != nil { return false }
        return true
    }
}
