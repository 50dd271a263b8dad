import ShoalTestSupport
import Testing

import ShoalCore

@Suite struct Base32Tests {
    /// RFC 4648, section 10.
    static let vectors: [(plain: String, encoded: String)] = [
        ("", ""),
        ("f", "MY======"),
        ("fo", "MZXQ===="),
        ("foo", "MZXW6==="),
        ("foob", "MZXW6YQ="),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI======"),
    ]

    @Test func encodesRFC4648Vectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            let unpadded = String(encoded.prefix { $0 != "=" })
            #expect(Base32.encode(Array(plain.utf8), padded: false) == unpadded)
        }
    }

    @Test func decodesRFC4648VectorsInEitherCaseWithOrWithoutPadding() throws {
        for (plain, encoded) in Self.vectors {
            let unpadded = String(encoded.prefix { $0 != "=" })
            for text in [encoded, unpadded, encoded.lowercased(), unpadded.lowercased()] {
                let bytes = try #require(Base32.decode(text), "\(text)")
                #expect(bytes == Array(plain.utf8))
            }
        }
    }

    @Test func decodesMixedCase() {
        #expect(Base32.decode("mZxW6yTbOi") == Array("foobar".utf8))
    }

    @Test func twentyBytesNeedNoPadding() {
        let bytes = (0..<20).map { UInt8($0 * 13 & 0xFF) }
        let text = Base32.encode(bytes)
        #expect(text.utf8.count == 32)
        #expect(!text.contains("="))
        #expect(Base32.decode(text) == bytes)
    }

    @Test(arguments: [
        "MZXW6YT1",  // '1' is not in the alphabet
        "MZXW6YT8",  // nor is '8'
        "MZXW6YT0",  // nor '0'
        "MZXW 6YT",  // nor a space
        "MZXW6YT!",
        "MÉ",  // nor non-ASCII
        "M",  // 1 character past a multiple of 8: no whole byte
        "MZX",  // 3 characters
        "MZXW6Y",  // 6 characters
        "MZXW6YTBO",  // 9 characters
        "MZ",  // the unused low bits of 'Z' are not zero
        "MZXR",  // nor of 'R'
        "MY=",  // padding that does not reach a multiple of 8
        "MY=======",  // too much padding
        "MY================",
        "========",  // padding alone
        "=",
        "MY=A====",  // padding in the middle
        "M=Y=====",
        "MZXQ=====",  // 9 characters with padding
    ])
    func rejectsNonCanonicalText(_ text: String) {
        #expect(Base32.decode(text) == nil)
    }

    @Test func roundTripsEveryLengthFromSeededBytes() throws {
        var generator = SeededGenerator(seed: 0x5EED_B32)
        for length in 0...64 {
            for _ in 0..<8 {
                let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                for padded in [true, false] {
                    let text = Base32.encode(bytes, padded: padded)
                    #expect(text.utf8.count == (padded ? (length + 4) / 5 * 8 : (length * 8 + 4) / 5))
                    #expect(try #require(Base32.decode(text)) == bytes)
                    #expect(try #require(Base32.decode(text.lowercased())) == bytes)
                }
            }
        }
    }
}

