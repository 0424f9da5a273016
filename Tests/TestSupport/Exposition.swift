/// A deliberately independent reader of the Prometheus text exposition, for tests: it does
/// not share code with the renderer it checks.
public struct Sample: Equatable, Sendable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

public struct ParsedExposition: Sendable {
    public var samples: [Sample] = []
    public var types: [String: String] = [:]
    public var helps: [String: String] = [:]
    public var sawEOF = false

    public func values(_ name: String, where match: [String: String] = [:]) -> [Sample] {
        samples.filter { s in s.name == name && match.allSatisfy { s.labels[$0.key] == $0.value } }
    }

    public func value(_ name: String, _ match: [String: String] = [:]) -> Double? {
        let found = values(name, where: match)
        return found.count == 1 ? found[0].value : nil
    }
}

public struct ExpositionError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

public func parseExposition(_ text: String) throws -> ParsedExposition {
    var out = ParsedExposition()
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let line = String(raw)
        if line.isEmpty { continue }
        if line == "# EOF" { out.sawEOF = true; continue }
        if out.sawEOF { throw ExpositionError(description: "content after # EOF: \(line)") }
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ", maxSplits: 3)
            guard parts.count == 4 else { throw ExpositionError(description: "bad TYPE line: \(line)") }
            out.types[String(parts[2])] = String(parts[3])
            continue
        }
        if line.hasPrefix("# HELP ") {
            let parts = line.split(separator: " ", maxSplits: 3)
            guard parts.count >= 3 else { throw ExpositionError(description: "bad HELP line: \(line)") }
            out.helps[String(parts[2])] = parts.count == 4 ? String(parts[3]) : ""
            continue
        }
        if line.hasPrefix("#") { continue }
        out.samples.append(try parseSample(line))
    }
    return out
}

func parseSample(_ line: String) throws -> Sample {
    var chars = Array(line)
    var i = 0
    var name = ""
    while i < chars.count, chars[i] != "{", chars[i] != " " { name.append(chars[i]); i += 1 }
    var labels: [String: String] = [:]
    if i < chars.count, chars[i] == "{" {
        i += 1
        while i < chars.count, chars[i] != "}" {
            var key = ""
            while i < chars.count, chars[i] != "=" { key.append(chars[i]); i += 1 }
            i += 1
            guard i < chars.count, chars[i] == "\"" else { throw ExpositionError(description: "unquoted label in \(line)") }
            i += 1
            var value = ""
            while i < chars.count, chars[i] != "\"" {
                if chars[i] == "\\", i + 1 < chars.count {
                    i += 1
                    value.append(chars[i] == "n" ? "\n" : chars[i])
                } else {
                    value.append(chars[i])
                }
                i += 1
            }
            i += 1
            labels[key] = value
            if i < chars.count, chars[i] == "," { i += 1 }
        }
        i += 1
    }
    while i < chars.count, chars[i] == " " { i += 1 }
    chars = Array(chars[i...])
    let valueText = String(chars.prefix { $0 != " " })
    guard let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : valueText == "NaN" ? .nan : nil) else {
        throw ExpositionError(description: "bad value in \(line)")
    }
    return Sample(name: name, labels: labels, value: value)
}
