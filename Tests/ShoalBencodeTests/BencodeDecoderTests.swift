import Testing

@testable import ShoalBencode

@Suite("Bencode decoder")
struct BencodeDecoderTests {
    private func decode(_ text: String, limits: BencodeLimits = BencodeLimits()) throws -> BencodeDocument {
        try BencodeDocument(decoding: Array(text.utf8), limits: limits)
    }

    private func error(_ text: String, limits: BencodeLimits = BencodeLimits()) -> BencodeError? {
        do {
            _ = try BencodeDocument(decoding: Array(text.utf8), limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func integers() throws {
        #expect(try decode("i0e").root.integer == 0)
        #expect(try decode("i42e").root.integer == 42)
        #expect(try decode("i-42e").root.integer == -42)
        #expect(try decode("i9223372036854775807e").root.integer == Int64.max)
        #expect(try decode("i-9223372036854775808e").root.integer == Int64.min)
    }

    @Test func strings() throws {
        let document = try decode("4:spam")
        #expect(document.root.kind == .string)
        #expect(document.root.string == "spam")
        #expect(document.root.span == 0..<6)
        #expect(try decode("0:").root.string == "")
        // Bytes that are not UTF-8 are still a string; only the text view is nil.
        let binary = try BencodeDocument(decoding: [0x32, 0x3A, 0xFF, 0xFE])
        #expect(binary.root.bytes.map(Array.init) == [0xFF, 0xFE])
        #expect(binary.root.string == nil)
    }

    @Test func stringsAreSlicesOfTheInput() throws {
        let document = try decode("l3:abc3:defe")
        let second = try #require(document.root.list?[1].bytes)
        #expect(second.startIndex == 8)
        #expect(Array(second) == Array("def".utf8))
    }

    @Test func listsAndDictionaries() throws {
        let document = try decode("d3:cow3:moo4:spaml1:a1:bi7eee")
        let root = document.root
        #expect(root.kind == .dictionary)
        #expect(root.count == 2)
        #expect(root["cow"]?.string == "moo")
        let spam = try #require(root["spam"]?.list)
        #expect(spam.map(\.kind) == [.string, .string, .integer])
        #expect(spam[2].integer == 7)
        #expect(root["missing"] == nil)
        #expect(root.entries?.compactMap(\.key.string) == ["cow", "spam"])
        #expect(document.unsortedKeyOffsets.isEmpty)
    }

    @Test func spansAreExact() throws {
        let text = "d4:infod6:lengthi5e4:name1:xe3:zzzi1ee"
        let document = try decode(text)
        let info = try #require(document.root["info"])
        #expect(String(decoding: info.encodedBytes, as: UTF8.self) == "d6:lengthi5e4:name1:xe")
        #expect(document.root.span == 0..<text.utf8.count)
    }

    @Test func emptyContainers() throws {
        #expect(try decode("le").root.list?.isEmpty == true)
        #expect(try decode("de").root.entries?.isEmpty == true)
        let nested = try decode("lldeleee")
        #expect(nested.root.count == 1)
        #expect(nested.root.list?[0].count == 2)
        #expect(nested.root.list?[0].list?.map(\.kind) == [.dictionary, .list])
    }

    @Test func unsortedKeysAreReadAndReported() throws {
        let document = try decode("d1:bi1e1:ai2ee")
        #expect(document.root["a"]?.integer == 2)
        #expect(document.root["b"]?.integer == 1)
        #expect(document.unsortedKeyOffsets == [7])
    }

    @Test func keysCompareAsRawBytes() throws {
        // "Z" (0x5A) sorts before "a" (0x61), and a prefix sorts before its extensions.
        let document = try decode("d1:Zi1e1:ai2e2:aai3ee")
        #expect(document.unsortedKeyOffsets.isEmpty)
    }

    @Test func prefixDecodingLeavesTrailingBytes() throws {
        let bytes = Array("d8:msg_typei1e5:piecei0eeRAWDATA".utf8)
        let document = try BencodeDocument.decodePrefix(of: bytes)
        #expect(document.end == 25)
        #expect(document.root["piece"]?.integer == 0)
    }

    @Test(arguments: [
        ("", BencodeError.Code.empty, 0),
        ("i", .truncated, 1),
        ("i12", .truncated, 3),
        ("ie", .emptyInteger, 1),
        ("i-e", .emptyInteger, 2),
        ("i03e", .leadingZero, 1),
        ("i-03e", .leadingZero, 2),
        ("i00e", .leadingZero, 1),
        ("i-0e", .negativeZero, 0),
        ("i1-2e", .unexpectedByte(UInt8(ascii: "-")), 2),
        ("i1.5e", .unexpectedByte(UInt8(ascii: ".")), 2),
        ("i9223372036854775808e", .integerTooLarge, 1),
        ("i-9223372036854775809e", .integerTooLarge, 2),
        ("i12345678901234567890e", .integerTooLarge, 1),
        ("5:abc", .truncated, 5),
        ("3abc", .unexpectedByte(UInt8(ascii: "a")), 1),
        ("03:abc", .leadingZero, 0),
        ("3", .truncated, 1),
        ("x", .unexpectedByte(UInt8(ascii: "x")), 0),
        ("l", .truncated, 1),
        ("li1e", .truncated, 4),
        ("d", .truncated, 1),
        ("di1ei2ee", .nonStringKey, 1),
        ("dle1:ae", .nonStringKey, 1),
        ("d1:ae", .missingValue, 4),
        ("d1:ai1e1:ai2ee", .duplicateKey, 7),
        ("d1:bi1e1:ai2e1:bi3ee", .duplicateKey, 13),
        ("i1ei2e", .trailingData, 3),
        ("4:spam ", .trailingData, 6),
        ("le e", .trailingData, 2),
        ("e", .unexpectedByte(UInt8(ascii: "e")), 0),
    ])
    func refusesWhatBEP3Forbids(input: String, code: BencodeError.Code, offset: Int) {
        #expect(error(input) == BencodeError(code, at: offset))
    }

    @Test func enforcesDepthLimit() {
        let limits = BencodeLimits(maxDepth: 3)
        #expect(error("llleee", limits: limits) == nil)
        #expect(error("lllleeee", limits: limits) == BencodeError(.tooDeep(limit: 3), at: 3))
        // Deep nesting far beyond any stack: refused quickly, no recursion.
        let deep = String(repeating: "l", count: 1_000_000)
        #expect(error(deep)?.code == .tooDeep(limit: 100))
    }

    @Test func enforcesItemLimit() {
        let limits = BencodeLimits(maxItems: 3)
        #expect(error("li1ei2ee", limits: limits) == nil)
        #expect(error("li1ei2ei3ee", limits: limits) == BencodeError(.tooManyItems(limit: 3), at: 7))
    }

    @Test func enforcesStringLimit() {
        let limits = BencodeLimits(maxStringLength: 4)
        #expect(error("4:spam", limits: limits) == nil)
        #expect(error("5:spams", limits: limits) == BencodeError(.stringTooLong(declared: 5, limit: 4), at: 0))
        // A declared length far beyond the input is refused without allocating it.
        #expect(error("9999999999:x") == BencodeError(.stringTooLong(declared: 9_999_999_999, limit: 64 << 20), at: 0))
    }

    @Test func enforcesIntegerDigitLimit() {
        let limits = BencodeLimits(maxIntegerDigits: 3)
        #expect(error("i999e", limits: limits) == nil)
        #expect(error("i1000e", limits: limits) == BencodeError(.integerTooLarge, at: 1))
        #expect(error("1000:x", limits: limits) == BencodeError(.integerTooLarge, at: 0))
    }

    @Test func errorsDescribeWhatAndWhere() {
        let description = BencodeError(.unexpectedByte(UInt8(ascii: "x")), at: 17).description
        #expect(description == "bencode: unexpected byte 'x' at byte 17")
        #expect(BencodeError(.unexpectedByte(0), at: 2).description.contains("0x00"))
    }
}
