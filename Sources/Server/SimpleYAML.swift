/// The YAML the exporter-toolkit web configuration uses, and nothing more: nested maps by
/// indentation, scalars (plain, 'single' or "double" quoted), `- item` lists, comments. Anything
/// else is refused with its line number rather than guessed at.
public indirect enum YAMLValue: Sendable, Equatable {
    case scalar(String)
    case map([(String, YAMLValue)])
    case list([YAMLValue])

    public static func == (a: YAMLValue, b: YAMLValue) -> Bool {
        switch (a, b) {
        case (.scalar(let x), .scalar(let y)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.map(let x), .map(let y)): x.elementsEqual(y) { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> YAMLValue? {
        if case .map(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }

    public var string: String? { if case .scalar(let s) = self { s } else { nil } }
}

public struct YAMLError: Error, CustomStringConvertible {
    public var description: String
}

public func parseYAML(_ text: String) throws(YAMLError) -> YAMLValue {
    // A byte-order mark and CRLF line ends (editors on other systems) are not content. "\r\n" is
    // one Character in Swift, so it is named as a separator of its own.
    let body = text.hasPrefix("\u{FEFF}") ? text.dropFirst() : text[...]
    var lines: [(number: Int, indent: Int, text: String)] = []
    for (i, raw) in body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
        let line = stripComment(String(raw))
        let content = line.drop { $0 == " " }
        if content.isEmpty { continue }
        if line.contains("\t") { throw YAMLError(description: "line \(i + 1): tabs are not allowed in YAML indentation") }
        if content.hasPrefix("---") || content.hasPrefix("&") || content.hasPrefix("*") || content.hasPrefix("{") || content.hasPrefix("[") {
            throw YAMLError(description: "line \(i + 1): unsupported YAML (documents, anchors, flow collections)")
        }
        lines.append((i + 1, line.count - content.count, String(content.reversed().drop { $0 == " " }.reversed())))
    }
    var position = 0
    let value = try parseBlock(lines, &position, indent: lines.first?.indent ?? 0)
    if position < lines.count { throw YAMLError(description: "line \(lines[position].number): unexpected indentation") }
    return value
}

private func parseBlock(_ lines: [(number: Int, indent: Int, text: String)], _ i: inout Int, indent: Int) throws(YAMLError) -> YAMLValue {
    guard i < lines.count else { return .map([]) }
    if lines[i].text.hasPrefix("- ") || lines[i].text == "-" {
        var items: [YAMLValue] = []
        while i < lines.count, lines[i].indent == indent, lines[i].text.hasPrefix("-") {
            let item = lines[i].text.dropFirst().drop { $0 == " " }
            guard !item.isEmpty, !item.contains(": ") else {
                throw YAMLError(description: "line \(lines[i].number): only scalar list items are supported")
            }
            items.append(.scalar(try unquote(String(item), lines[i].number)))
            i += 1
        }
        return .list(items)
    }
    var fields: [(String, YAMLValue)] = []
    var seen = Set<String>()
    while i < lines.count, lines[i].indent == indent {
        let (number, text) = (lines[i].number, lines[i].text)
        guard let colon = keyColon(text) else { throw YAMLError(description: "line \(number): expected 'key: value'") }
        let key = try unquote(String(text[..<colon]), number)
        let rest = text[text.index(after: colon)...].drop { $0 == " " }
        if !seen.insert(key).inserted { throw YAMLError(description: "line \(number): duplicate key '\(key)'") }
        i += 1
        if rest.isEmpty {
            if i < lines.count, lines[i].indent > indent {
                fields.append((key, try parseBlock(lines, &i, indent: lines[i].indent)))
            } else if i < lines.count, lines[i].indent == indent, lines[i].text.hasPrefix("- ") {
                fields.append((key, try parseBlock(lines, &i, indent: indent)))
            } else {
                fields.append((key, .scalar("")))
            }
        } else {
            if rest.hasPrefix("|") || rest.hasPrefix(">") {
                throw YAMLError(description: "line \(number): block scalars are not supported")
            }
            if let c = rest.first, "&*{[!".contains(c) {
                throw YAMLError(description: "line \(number): unsupported YAML (anchors, aliases, tags, flow collections)")
            }
            fields.append((key, .scalar(try unquote(String(rest), number))))
        }
    }
    if i < lines.count, lines[i].indent > indent { throw YAMLError(description: "line \(lines[i].number): unexpected indentation") }
    return .map(fields)
}

/// The colon ending a key (outside quotes, followed by a space or the end of the line).
private func keyColon(_ text: String) -> String.Index? {
    var quote: Character?
    var i = text.startIndex
    while i < text.endIndex {
        let c = text[i]
        if let q = quote { if c == q { quote = nil } } else if c == "'" || c == "\"" { quote = c } else if c == ":" {
            let next = text.index(after: i)
            if next == text.endIndex || text[next] == " " { return i }
        }
        i = text.index(after: i)
    }
    return nil
}

private func stripComment(_ line: String) -> String {
    var quote: Character?
    var previous: Character = " "
    var out = ""
    for c in line {
        if let q = quote { if c == q { quote = nil } } else if c == "'" || c == "\"" { quote = c } else if c == "#" && previous == " " { break }
        out.append(c)
        previous = c
    }
    return out
}

private func unquote(_ s: String, _ line: Int) throws(YAMLError) -> String {
    guard let first = s.first, first == "'" || first == "\"" else { return s }
    guard s.count >= 2, s.last == first else { throw YAMLError(description: "line \(line): unterminated quoted string") }
    let body = String(s.dropFirst().dropLast())
    if first == "'" { return body.replacingOccurrences(of: "''", with: "'") }
    var out = ""
    var escape = false
    for c in body {
        if escape {
            switch c {
            case "n": out.append("\n")
            case "t": out.append("\t")
            default: out.append(c)
            }
            escape = false
        } else if c == "\\" {
            escape = true
        } else {
            out.append(c)
        }
    }
    return out
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
