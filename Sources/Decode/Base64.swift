/// Base64 (RFC 4648, padded) without Foundation, for the BPF objects the BPFEmbed plugin embeds and
/// HTTP basic credentials. Strict, as RFC 4648 section 3.3 asks: a character outside the alphabet,
/// missing or misplaced padding, or stray bits in the last character are an error.
public enum Base64 {
    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        /// The UTF-8 offset of the first byte that makes the text invalid (the length, when it is the length).
        public var offset: Int
        public var description: String { "invalid base64 at byte \(offset)" }
    }

    public static func decode(_ text: String) throws(Error) -> [UInt8] {
        // Through unsafe buffers, without an array per quantum: the embedded BPF object
        // (hundreds of KiB) is decoded at every start, and checked indexing and three-byte
        // arrays made that 4% of start-up's CPU.
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { throw Error(offset: chars.count) }
        var bad: Int?
        let out = [UInt8](unsafeUninitializedCapacity: chars.count / 4 * 3) { out, written in
            chars.withUnsafeBufferPointer { chars in
                values.withUnsafeBufferPointer { values in
                    written = 0
                    for start in stride(from: 0, to: chars.count, by: 4) {
                        var quantum: UInt32 = 0
                        var padding = 0
                        for i in start..<start + 4 {
                            let c = chars[i]
                            // '=' only ends the text, at most twice
                            if c == UInt8(ascii: "="), start + 4 == chars.count, i >= start + 2 {
                                padding += 1
                                quantum <<= 6
                                continue
                            }
                            let v = values[Int(c)]
                            guard padding == 0, v != 0xff else { bad = i; return }
                            quantum = quantum << 6 | UInt32(v)
                        }
                        // the bits the padding stands for must be zero
                        guard quantum & ((1 << (8 * padding)) - 1) == 0 else { bad = start + 3 - padding; return }
                        out[written] = UInt8(quantum >> 16)
                        if padding < 2 { out[written + 1] = UInt8(quantum >> 8 & 0xff) }
                        if padding < 1 { out[written + 2] = UInt8(quantum & 0xff) }
                        written += 3 - padding
                    }
                }
            }
        }
        if let bad { throw Error(offset: bad) }
        return out
    }

    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        return table
    }()
}

/// The BPF objects BPFEmbed embeds, written by `base64 -w0` at build time: invalid text there is
/// a broken build, not input, and stops at once.
public func base64Decode(_ text: String) -> [UInt8] {
    do { return try Base64.decode(text) } catch { fatalError("embedded BPF object: \(error)") }
}
