import Foundation
import IrqscopeDecode
import Testing

@Suite struct Base64Tests {
    /// Where decoding fails, nil when it does not.
    func failure(_ text: String) -> Int? {
        do { _ = try Base64.decode(text); return nil } catch { return error.offset }
    }

    /// Foundation's encoder is the reference: every length around the padding cases, every byte value.
    @Test func decodesWhatFoundationEncodes() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            #expect(try Base64.decode(Data(bytes).base64EncodedString()) == bytes, "length \(length)")
        }
        let all = Array(UInt8.min ... UInt8.max)
        #expect(try Base64.decode(Data(all).base64EncodedString()) == all)
    }

    @Test(arguments: [("Zm9v!A==", 4), ("Zm9v\nZm9", 4), (" Zm9", 0), ("Zm9 ", 3), ("Zm-_", 2), ("Zm9v\u{e9}A=", 4)])
    func rejectsCharactersOutsideTheAlphabet(_ text: String, _ offset: Int) {
        #expect(failure(text) == offset)
        // Foundation's decoder agrees that it is not base64
        #expect(Data(base64Encoded: text) == nil)
    }

    /// Where Foundation is lenient: RFC 4648 padding, only at the end, at most two.
    @Test(arguments: [("Zm9", 3), ("Zm9vZg=", 7), ("Zm=v", 3), ("Zg===", 5), ("Zg==Zm9v", 2), ("=Zm9", 0), ("Z===", 1)])
    func rejectsMissingOrMisplacedPadding(_ text: String, _ offset: Int) {
        #expect(failure(text) == offset)
    }

    /// "Zh==" and "Zm9=" carry bits the padding says are not there: no encoder writes them.
    @Test func rejectsStrayBitsBeforePadding() throws {
        #expect(failure("Zh==") == 1)
        #expect(failure("Zm9=") == 2)
        #expect(try Base64.decode("Zg==") == Array("f".utf8))
        #expect(try Base64.decode("Zm8=") == Array("fo".utf8))
    }
}
