import ShoalTestSupport
import Testing

@testable import ShoalBencode

@Suite("Bencode encoder and round trips")
struct BencodeEncoderTests {
    @Test func writesCanonicalForm() {
        let value: BencodeValue = ["spam": ["a", 1, -3], "cow": "moo", "Zebra": 0, "": []]
        #expect(String(decoding: value.encoded, as: UTF8.self) == "d0:le5:Zebrai0e3:cow3:moo4:spaml1:ai1ei-3eee")
    }

    @Test func sortsKeysAsRawBytesNotText() {
        // U+00E9 is C3 A9 in UTF-8 and sorts after "z"; a prefix sorts first.
        let value: BencodeValue = ["é": 1, "z": 2, "ab": 3, "a": 4]
        #expect(String(decoding: value.encoded, as: UTF8.self) == "d1:ai4e2:abi3e1:zi2e2:éi1ee")
    }

    @Test func reencodesCanonicalInputByteForByte() throws {
        let inputs = [
            "d8:announce35:udp://tracker.example:1337/announce4:infod6:lengthi1048576e4:name8:file.bin12:piece lengthi262144e6:pieces0:ee",
            "li-9223372036854775808ei9223372036854775807ei0e0:lee",
            "d0:d0:lleee1:adee",
        ]
        for input in inputs {
            let document = try BencodeDocument(decoding: Array(input.utf8))
            #expect(document.root.value.encoded == Array(input.utf8))
        }
    }

    @Test func reencodingSortsUnsortedInput() throws {
        let document = try BencodeDocument(decoding: Array("d1:bi1e1:ai2ee".utf8))
        #expect(String(decoding: document.root.value.encoded, as: UTF8.self) == "d1:ai2e1:bi1ee")
    }

    /// Property: for generated values, decode(encode(v)) == v, the encoding is canonical
    /// (re-encoding the decoded document gives the same bytes) and every span is exact.
    @Test func roundTripsGeneratedValues() throws {
        var random = SeededGenerator(seed: 0x5EED_B1E0)
        for _ in 0..<500 {
            let value = BencodeValue.generate(using: &random, depth: 0)
            let bytes = value.encoded
            let document = try BencodeDocument(decoding: bytes)
            #expect(document.root.value == value)
            #expect(document.root.span == 0..<bytes.count)
            #expect(document.unsortedKeyOffsets.isEmpty)
            try checkSpans(document.root, in: bytes)
        }
    }

    /// Property: every strict prefix of a valid encoding is refused (never accepted, never a trap),
    /// and the error points inside the input.
    @Test func refusesEveryTruncation() throws {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<100 {
            let bytes = BencodeValue.generate(using: &random, depth: 0).encoded
            for length in 0..<bytes.count {
                #expect(throws: BencodeError.self) { try BencodeDocument(decoding: Array(bytes[0..<length])) }
            }
        }
    }

    private func checkSpans(_ node: BencodeNode, in bytes: [UInt8]) throws {
        #expect(Array(node.encodedBytes) == node.value.encoded)
        for child in node.list ?? [] { try checkSpans(child, in: bytes) }
        for entry in node.entries ?? [] {
            try checkSpans(entry.key, in: bytes)
            try checkSpans(entry.value, in: bytes)
        }
    }
}

extension BencodeValue {
    /// A random value: small strings (binary included), integers across the whole range,
    /// and nested containers up to depth 4.
    static func generate(using random: inout SeededGenerator, depth: Int) -> BencodeValue {
        let choice = depth >= 4 ? random.next(upTo: 2) : random.next(upTo: 4)
        switch choice {
        case 0:
            switch random.next(upTo: 3) {
            case 0: return .integer(Int64(bitPattern: random.next()))
            case 1: return .integer(Int64(random.next(upTo: 2000)) - 1000)
            default: return .integer(0)
            }
        case 1:
            let length = random.next(upTo: 12)
            return .string((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        case 2:
            return .list((0..<random.next(upTo: 5)).map { _ in generate(using: &random, depth: depth + 1) })
        default:
            var dictionary: [[UInt8]: BencodeValue] = [:]
            for _ in 0..<random.next(upTo: 5) {
                let key = (0..<random.next(upTo: 4)).map { _ in UInt8(ascii: "a") + UInt8(random.next(upTo: 4)) }
                dictionary[key] = generate(using: &random, depth: depth + 1)
            }
            return .dictionary(dictionary)
        }
    }
}
