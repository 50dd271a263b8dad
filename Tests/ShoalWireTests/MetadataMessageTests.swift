import NIOCore
import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalWire

@Suite("ut_metadata messages (BEP 9)")
struct MetadataMessageTests {
    private func decode(_ bytes: [UInt8]) throws(WireError) -> MetadataMessage? {
        try MetadataMessage.decode(ByteBuffer(bytes: bytes))
    }

    private func decode(_ text: String) throws(WireError) -> MetadataMessage? {
        try decode(Array(text.utf8))
    }

    /// The fault a payload is refused with (nil when it is accepted).
    private func fault(_ bytes: [UInt8]) -> MetadataMessage.Fault? {
        do {
            _ = try decode(bytes)
            return nil
        } catch {
            guard case .invalidMetadataMessage(let fault) = error.code else {
                Issue.record("unexpected error \(error)")
                return nil
            }
            #expect(error.disposition == .close)
            #expect(error.messageID == 20)
            return fault
        }
    }

    private func fault(_ text: String) -> MetadataMessage.Fault? { fault(Array(text.utf8)) }

    @Test func encodesBEP9sExamplesByteForByte() {
        #expect(WireFixtures.bytes(MetadataMessage.request(piece: 0).payload) == Array("d8:msg_typei0e5:piecei0ee".utf8))
        #expect(WireFixtures.bytes(MetadataMessage.reject(piece: 0).payload) == Array("d8:msg_typei2e5:piecei0ee".utf8))
        let block = [UInt8](repeating: 0x78, count: 3425)
        let data = MetadataMessage.data(piece: 0, totalSize: 3425, block: ByteBuffer(bytes: block))
        #expect(WireFixtures.bytes(data.payload) == Array("d8:msg_typei1e5:piecei0e10:total_sizei3425ee".utf8) + block)
    }

    @Test func decodesEachKind() throws {
        #expect(try decode("d8:msg_typei0e5:piecei7ee") == .request(piece: 7))
        #expect(try decode("d8:msg_typei2e5:piecei3ee") == .reject(piece: 3))
        let payload = Array("d8:msg_typei1e5:piecei1e10:total_sizei16390ee".utf8) + Array("abcdef".utf8)
        let message = try #require(try decode(payload))
        guard case .data(let piece, let totalSize, let block) = message else {
            Issue.record("not data: \(message)")
            return
        }
        #expect(piece == 1 && totalSize == 16390)
        #expect(WireFixtures.bytes(block) == Array("abcdef".utf8))
    }

    @Test func ignoresUnknownTypesAndKeys() throws {
        #expect(try decode("d8:msg_typei3e5:piecei0ee") == nil, "BEP 9: an unknown msg_type is ignored")
        #expect(try decode("d8:msg_typei-1ee") == nil)
        #expect(try decode("d1:xi1e8:msg_typei0e5:piecei2e1:z3:abce") == .request(piece: 2))
        // Keys out of order are read as well (bencode only asks writers to sort).
        #expect(try decode("d5:piecei4e8:msg_typei2ee") == .reject(piece: 4))
    }

    @Test func refusesBrokenMessagesWithTheirFault() {
        for broken in ["", "d8:msg_type", "x", "i5e"] {
            guard case .notADictionary = fault(broken) else {
                Issue.record("\(broken) was not refused as no dictionary")
                continue
            }
        }
        #expect(fault("li0ee") == .notADictionary(nil))
        #expect(fault("d5:piecei0ee") == .missingMessageType)
        #expect(fault("d8:msg_type1:0e") == .missingMessageType)
        #expect(fault("d8:msg_typei0ee") == .missingPiece)
        #expect(fault("d8:msg_typei0e5:piece1:0e") == .missingPiece)
        #expect(fault("d8:msg_typei0e5:piecei-1ee") == .pieceOutOfRange(-1))
        #expect(fault("d8:msg_typei0e5:piecei\(MetadataMessage.maxPieceCount)ee") == .pieceOutOfRange(Int64(MetadataMessage.maxPieceCount)))
        #expect(fault("d8:msg_typei0e5:piecei0eeX") == .trailingBytes(1))
        #expect(fault("d8:msg_typei2e5:piecei0eeXY") == .trailingBytes(2))
        #expect(fault("d8:msg_typei1e5:piecei0eeX") == .invalidTotalSize(nil))
        #expect(fault("d8:msg_typei1e5:piecei0e10:total_sizei0eeX") == .invalidTotalSize(0))
        let tooLarge = Int64(ExtensionHandshake.maxMetadataSize) + 1
        #expect(fault("d8:msg_typei1e5:piecei0e10:total_sizei\(tooLarge)eeX") == .invalidTotalSize(tooLarge))
        // Piece 1 of 100 bytes of metadata does not exist.
        #expect(fault("d8:msg_typei1e5:piecei1e10:total_sizei100eeX") == .pieceOutOfRange(1))
        // Not the last piece: exactly 16 KiB; the last: exactly the rest.
        #expect(fault("d8:msg_typei1e5:piecei0e10:total_sizei16390eeX") == .wrongPieceLength(expected: 16384, actual: 1))
        #expect(fault(Array("d8:msg_typei1e5:piecei1e10:total_sizei16390ee".utf8) + [UInt8](repeating: 0, count: 7))
            == .wrongPieceLength(expected: 6, actual: 7))
    }

    @Test func everyTruncationIsRefused() throws {
        let messages: [MetadataMessage] = [
            .request(piece: 12), .reject(piece: 4095),
            .data(piece: 2, totalSize: 40000, block: ByteBuffer(repeating: 9, count: 40000 - 32768)),
            .data(piece: 0, totalSize: 20000, block: ByteBuffer(repeating: 1, count: 16384)),
        ]
        for message in messages {
            let bytes = WireFixtures.bytes(message.payload)
            #expect(try decode(bytes) == message)
            // Every cut in the dictionary and just after it, then every 61st byte of the piece.
            for cut in Array(0..<min(bytes.count, 100)) + Array(stride(from: 100, to: bytes.count, by: 61)) {
                #expect(throws: WireError.self, "\(message) cut at \(cut)") { try decode(Array(bytes[..<cut])) }
            }
        }
    }

    @Test func garbageGivesTypedErrorsNeverATrap() {
        var random = SeededGenerator(seed: 9)
        let prefix = Array("d8:msg_typei1e5:piecei0e10:total_sizei".utf8)
        for round in 0..<3000 {
            let length = Int(random.next() % 80)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if round % 2 == 0 { bytes = prefix + bytes }
            do {
                if let message = try decode(bytes) {
                    #expect(try decode(WireFixtures.bytes(message.payload)) == message)
                }
            } catch {
                #expect({ if case .invalidMetadataMessage = error.code { true } else { false } }())
            }
        }
    }

    @Test func travelsInAnExtendedMessageByteAtATime() throws {
        let message = MetadataMessage.data(piece: 0, totalSize: 5000, block: ByteBuffer(repeating: 0xEE, count: 5000))
        let bytes = WireFixtures.bytes(message.message(id: ExtensionHandshake.metadataMessageID).encoded)
        var decoder = PeerMessageDecoder(pieceCount: nil)
        var buffer = ByteBuffer()
        var received: PeerMessage?
        for byte in bytes {
            buffer.writeInteger(byte)
            if let decoded = try decoder.next(from: &buffer) { received = decoded }
        }
        guard case .extended(let id, let payload) = try #require(received) else {
            Issue.record("not an extended message")
            return
        }
        #expect(id == ExtensionHandshake.metadataMessageID)
        #expect(try MetadataMessage.decode(payload) == message)
    }

    @Test func piecesOfMetadata() {
        #expect(MetadataMessage.pieceCount(totalSize: 1) == 1)
        #expect(MetadataMessage.pieceCount(totalSize: 16384) == 1)
        #expect(MetadataMessage.pieceCount(totalSize: 16385) == 2)
        #expect(MetadataMessage.length(ofPiece: 1, totalSize: 16385) == 1)
        #expect(MetadataMessage.length(ofPiece: 0, totalSize: 16385) == 16384)
        #expect(MetadataMessage.length(ofPiece: 2, totalSize: 16385) == nil)
        #expect(MetadataMessage.length(ofPiece: -1, totalSize: 16385) == nil)
        #expect(MetadataMessage.maxPieceCount == 4096)
    }

    @Test func shoalsHandshakeAdvertisesBothExtensions() {
        let full = ExtensionHandshake.shoal(
            metadataSize: 31235, peerExchange: true, listenPort: 6881, client: ExtensionHandshake.shoalClientName)
        #expect(full.id(for: "ut_metadata") == ExtensionHandshake.metadataMessageID)
        #expect(full.id(for: "ut_pex") == ExtensionHandshake.peerExchangeMessageID)
        #expect(full.metadataSize == 31235)
        #expect(full.listenPort == 6881)
        #expect(full.client?.hasPrefix("Shoal ") == true)
        let magnet = ExtensionHandshake.shoal(peerExchange: true)
        #expect(magnet.id(for: "ut_metadata") != nil && magnet.metadataSize == nil, "no size before the metadata")
        let privateTorrent = ExtensionHandshake.shoal(metadata: false, metadataSize: 100, peerExchange: false)
        #expect(privateTorrent.messages.isEmpty && privateTorrent.metadataSize == nil)
        #expect(ExtensionHandshake.shoal(peerExchange: false, listenPort: 0).listenPort == nil)
    }
}
