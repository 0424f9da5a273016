/// Decodes base64 (the BPF objects the BPFEmbed plugin embeds, HTTP basic credentials) without Foundation.
public func base64Decode(_ text: String) -> [UInt8] {
    var table = [UInt8](repeating: 0xff, count: 256)
    for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
        table[Int(c)] = UInt8(i)
    }
    var out = [UInt8]()
    out.reserveCapacity(text.utf8.count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    for c in text.utf8 {
        let v = table[Int(c)]
        if v == 0xff { continue } // padding
        acc = (acc << 6) | UInt32(v)
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
        }
    }
    return out
}
