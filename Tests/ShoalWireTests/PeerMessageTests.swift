import NIOCore
import ShoalCore
import Testing

@testable import ShoalWire

@Suite("Peer messages")
struct PeerMessageTests {
    private func encoding(_ message: PeerMessage) -> [UInt8] { WireFixtures.bytes(message.encoded) }

    /// The byte layouts of BEP 3 "peer messages", BEP 5 `port`, BEP 6 and BEP 10.
    @Test func encodesEachMessageAsTheBEPsLayItOut() {
        #expect(encoding(.keepAlive) == [0, 0, 0, 0])
        #expect(encoding(.choke) == [0, 0, 0, 1, 0])
        #expect(encoding(.unchoke) == [0, 0, 0, 1, 1])
        #expect(encoding(.interested) == [0, 0, 0, 1, 2])
        #expect(encoding(.notInterested) == [0, 0, 0, 1, 3])
        #expect(encoding(.have(piece: 0x0102_0304)) == [0, 0, 0, 5, 4, 1, 2, 3, 4])
        #expect(encoding(.bitfield(ByteBuffer(bytes: [0xF0, 0x01]))) == [0, 0, 0, 3, 5, 0xF0, 0x01])
        #expect(
            encoding(.request(BlockRequest(piece: 1, offset: 0x4000, length: 0x4000)))
                == [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0])
        #expect(
            encoding(.piece(piece: 2, offset: 3, block: ByteBuffer(bytes: [0xDE, 0xAD])))
                == [0, 0, 0, 11, 7, 0, 0, 0, 2, 0, 0, 0, 3, 0xDE, 0xAD])
        #expect(
            encoding(.cancel(BlockRequest(piece: 1, offset: 2, length: 3)))
                == [0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
        #expect(encoding(.port(6881)) == [0, 0, 0, 3, 9, 0x1A, 0xE1])
        #expect(encoding(.suggestPiece(5)) == [0, 0, 0, 5, 13, 0, 0, 0, 5])
        #expect(encoding(.haveAll) == [0, 0, 0, 1, 14])
        #expect(encoding(.haveNone) == [0, 0, 0, 1, 15])
        #expect(
            encoding(.rejectRequest(BlockRequest(piece: 1, offset: 2, length: 3)))
                == [0, 0, 0, 13, 16, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
        #expect(encoding(.allowedFast(6)) == [0, 0, 0, 5, 17, 0, 0, 0, 6])
        #expect(encoding(.extended(id: 1, payload: ByteBuffer(bytes: [0x64, 0x65]))) == [0, 0, 0, 4, 20, 1, 0x64, 0x65])
        #expect(encoding(.unknown(id: 99, payload: ByteBuffer(bytes: [1]))) == [0, 0, 0, 2, 99, 1])
    }

    @Test func lengthsAndIdsAgreeWithTheEncoding() {
        for message in WireFixtures.everyMessage {
            let bytes = encoding(message)
            #expect(bytes.count == message.encodedLength, "\(message)")
            #expect(Array(bytes.prefix(4)) == WireFixtures.be32(UInt32(message.length)), "\(message)")
            #expect(bytes.count > 4 ? bytes[4] == message.id : message.id == nil, "\(message)")
        }
    }

    @Test func writesAfterWhatTheBufferAlreadyHolds() {
        var buffer = ByteBuffer(bytes: [0xFF])
        PeerMessage.interested.write(to: &buffer)
        PeerMessage.have(piece: 1).write(to: &buffer)
        #expect(WireFixtures.bytes(buffer) == [0xFF, 0, 0, 0, 1, 2, 0, 0, 0, 5, 4, 0, 0, 0, 1])
    }

    @Test func pieceHeaderPrecedesBlockBytesSentSeparately() {
        let block = BlockRequest(piece: 4, offset: 16384, length: 3)
        var header = ByteBuffer()
        PeerMessage.writePieceHeader(block, to: &header)
        #expect(header.readableBytes == PeerMessage.pieceHeaderLength)
        var whole = header
        whole.writeBytes([7, 8, 9])
        let message = PeerMessage.piece(piece: 4, offset: 16384, block: ByteBuffer(bytes: [7, 8, 9]))
        #expect(whole == message.encoded)
    }

    @Test func bitfieldFromABitfield() {
        var field = Bitfield(count: 10)
        field.set(0)
        field.set(9)
        #expect(encoding(.bitfield(field)) == [0, 0, 0, 3, 5, 0x80, 0x40])
    }

    @Test func describesMessages() {
        #expect(PeerMessage.request(BlockRequest(piece: 1, offset: 2, length: 3)).description == "request piece 1 [2+3]")
        #expect(PeerMessage.keepAlive.description == "keep-alive")
        #expect(PeerMessage.unknown(id: 42, payload: ByteBuffer()).description == "unknown message 42 (0 bytes)")
    }
}
