import NIOCore
import ShoalBencode
import Testing

@testable import ShoalWire

@Suite("Extension handshake")
struct ExtensionHandshakeTests {
    private func decode(_ text: String) throws(WireError) -> ExtensionHandshake {
        try ExtensionHandshake(decoding: ByteBuffer(bytes: Array(text.utf8)))
    }

    /// BEP 10's example (its `m` names are sorted here: bencode requires it).
    @Test func decodesBEP10sExample() throws {
        let handshake = try decode("d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v13:\u{b5}Torrent 1.2e")
        #expect(handshake.messages == ["LT_metadata": 1, "ut_pex": 2])
        #expect(handshake.listenPort == 6881)
        #expect(handshake.client == "\u{b5}Torrent 1.2")
        #expect(handshake.id(for: "ut_pex") == 2)
        #expect(handshake.id(for: "ut_metadata") == nil)
    }

    @Test func decodesEveryField() throws {
        var value: BencodeValue = [
            "m": ["ut_metadata": 3, "ut_pex": 0],
            "v": "Shoal 0.1",
            "p": 51413,
            "reqq": 500,
            "yourip": .string([10, 0, 0, 1]),
            "ipv4": .string([192, 168, 1, 2]),
            "ipv6": .string([UInt8](repeating: 0xFE, count: 16)),
            "metadata_size": 31_235,
            "upload_only": 1,
            "e": 1,  // unknown: ignored
        ]
        let handshake = try ExtensionHandshake(decoding: ByteBuffer(bytes: value.encoded))
        #expect(handshake.messages == ["ut_metadata": 3, "ut_pex": 0])
        #expect(handshake.id(for: "ut_pex") == nil, "0 means disabled")
        #expect(handshake.client == "Shoal 0.1")
        #expect(handshake.listenPort == 51413)
        #expect(handshake.requestQueueLength == 500)
        #expect(handshake.yourIP == [10, 0, 0, 1])
        #expect(handshake.ipv4 == [192, 168, 1, 2])
        #expect(handshake.ipv6 == [UInt8](repeating: 0xFE, count: 16))
        #expect(handshake.metadataSize == 31_235)
        #expect(handshake.uploadOnly == true)
        // Everything known survives a round trip; the unknown key does not.
        if case .dictionary(var entries) = value { entries[Array("e".utf8)] = nil; value = .dictionary(entries) }
        #expect(handshake.encoded == value.encoded)
    }

    @Test func dropsWrongTypesAndOutOfRangeValues() throws {
        let handshake = try decode(
            "d1:md1:ai-1e1:bi256e1:c1:x1:di7ee1:pi70000e4:reqqi0e6:youripi5e4:ipv43:abc13:metadata_sizei-5e1:vi3ee")
        #expect(handshake == ExtensionHandshake(messages: ["d": 7]))
        #expect(try decode("d1:m3:abce") == ExtensionHandshake(), "m that is not a dictionary")
        #expect(try decode("de") == ExtensionHandshake())
        let yourIP6 = try decode("d6:yourip16:0123456789abcdefe")
        #expect(yourIP6.yourIP?.count == 16)
    }

    @Test func refusesWhatIsNotADictionary() {
        #expect(throws: WireError.self) { try decode("li1ee") }
        #expect(throws: WireError.self) { try decode("d1:m") }
        #expect(throws: WireError.self) { try decode("") }
        do {
            _ = try decode("i5e")
        } catch {
            #expect(error.code == .invalidExtensionHandshake(nil))
            #expect(error.disposition == .close)
        }
    }

    @Test func encodesCanonicallyWithMAlwaysPresent() {
        #expect(String(decoding: ExtensionHandshake().encoded, as: UTF8.self) == "d1:mdee")
        let handshake = ExtensionHandshake(
            messages: ["ut_pex": 2, "ut_metadata": 1], client: "Shoal", listenPort: 6881, requestQueueLength: 250,
            metadataSize: 100, uploadOnly: false)
        #expect(
            String(decoding: handshake.encoded, as: UTF8.self)
                == "d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei100e1:pi6881e4:reqqi250e11:upload_onlyi0e1:v5:Shoale")
        #expect(handshake.message == .extended(id: 0, payload: ByteBuffer(bytes: handshake.encoded)))
    }

    /// BEP 10: a later handshake's `m` holds only changes; 0 disables.
    @Test func laterHandshakesAreAdditive() {
        let first = ExtensionHandshake(messages: ["ut_metadata": 1, "ut_pex": 2], client: "A", requestQueueLength: 100)
        let later = ExtensionHandshake(messages: ["ut_pex": 0, "lt_donthave": 7], requestQueueLength: 200)
        let merged = first.merging(later)
        #expect(merged.messages == ["ut_metadata": 1, "ut_pex": 0, "lt_donthave": 7])
        #expect(merged.client == "A")
        #expect(merged.requestQueueLength == 200)
        #expect(merged.id(for: "ut_pex") == nil)
    }

    @Test func boundsTheMessageMap() throws {
        var entries: [String: BencodeValue] = [:]
        for index in 0..<400 { entries["x\(index)"] = .integer(Int64(index % 256)) }
        let value: BencodeValue = .dictionary(["m": .dictionary(entries)])
        let handshake = try ExtensionHandshake(decoding: ByteBuffer(bytes: value.encoded))
        #expect(handshake.messages.count == ExtensionHandshake.maxMessages)
        var grown = handshake
        for round in 0..<3 {
            var more: [String: UInt8] = [:]
            for index in 0..<100 { more["r\(round)-\(index)"] = 1 }
            grown = grown.merging(ExtensionHandshake(messages: more))
        }
        #expect(grown.messages.count == ExtensionHandshake.maxMessages)
    }
}
