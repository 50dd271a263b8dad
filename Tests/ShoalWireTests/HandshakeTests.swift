import NIOCore
import ShoalCore
import Testing

@testable import ShoalWire

@Suite("Handshake")
struct HandshakeTests {
    private let handshake = Handshake(
        reserved: [.extensionProtocol, .fastExtension, .dht], infoHash: WireFixtures.infoHash, peerID: WireFixtures.ourID)

    private var bytes: [UInt8] {
        var buffer = ByteBuffer()
        handshake.write(to: &buffer)
        return WireFixtures.bytes(buffer)
    }

    @Test func layoutIsBEP3s() {
        let bytes = bytes
        #expect(bytes.count == 68)
        #expect(bytes[0] == 19)
        #expect(Array(bytes[1..<20]) == Array("BitTorrent protocol".utf8))
        #expect(Array(bytes[20..<28]) == [0, 0, 0, 0, 0, 0x10, 0, 0x05])
        #expect(Array(bytes[28..<48]) == WireFixtures.infoHash.bytes)
        #expect(Array(bytes[48..<68]) == WireFixtures.ourID.bytes)
    }

    @Test func reservedBitsNameTheBEPBits() {
        #expect(ReservedBits(bytes: [0, 0, 0, 0, 0, 0x10, 0, 0]) == .extensionProtocol)
        #expect(ReservedBits(bytes: [0, 0, 0, 0, 0, 0, 0, 0x04]) == .fastExtension)
        #expect(ReservedBits(bytes: [0, 0, 0, 0, 0, 0, 0, 0x01]) == .dht)
        #expect(ReservedBits(bytes: [0, 0, 0]) == nil)
        // Unknown bits (here Azureus messaging, byte 0 0x80, and BEP 52's v2 bit, byte 7 0x10) are kept.
        let bits = ReservedBits(bytes: [0x80, 0, 0, 0, 0, 0x10, 0, 0x15])!
        #expect(bits.contains(.extensionProtocol) && bits.contains(.fastExtension) && bits.contains(.dht))
        #expect(bits.bytes == [0x80, 0, 0, 0, 0, 0x10, 0, 0x15])
        #expect(bits.description == "[extension protocol, fast extension, dht, 0x8000000000000010]")
    }

    @Test func decodesTheWholeHandshakeOnlyWhenAllOfItIsThere() throws {
        var buffer = ByteBuffer(bytes: bytes.prefix(67))
        let decoded = try Handshake.decode(from: &buffer)
        #expect(decoded == nil)
        #expect(buffer.readerIndex == 0)
        buffer.writeBytes([bytes[67], 0, 0, 0, 0])
        let decoded2 = try Handshake.decode(from: &buffer)
        #expect(decoded2 == handshake)
        #expect(buffer.readableBytes == 4, "the bytes after it are left for the message decoder")
    }

    /// An incoming connection reads the head (48 bytes), learns the torrent and answers before the
    /// peer id arrives (BEP 3).
    @Test func decodesTheHeadThenThePeerID() throws {
        var buffer = ByteBuffer()
        for byte in bytes.prefix(47) {
            buffer.writeInteger(byte)
            let decoded = try Handshake.Head.decode(from: &buffer)
            #expect(decoded == nil)
        }
        buffer.writeInteger(bytes[47])
        let decoded2 = try Handshake.Head.decode(from: &buffer)
        let head = try #require(decoded2)
        #expect(head == handshake.head)
        #expect(head.infoHash == WireFixtures.infoHash)
        buffer.writeBytes(bytes[48..<60])
        let peerID = Handshake.decodePeerID(from: &buffer)
        #expect(peerID == nil)
        buffer.writeBytes(bytes[60...])
        let peerID2 = Handshake.decodePeerID(from: &buffer)
        #expect(peerID2 == WireFixtures.ourID)
        #expect(Handshake(head: head, peerID: WireFixtures.ourID) == handshake)
    }

    @Test func refusesAnotherProtocolAtItsFirstWrongByte() {
        func failure(_ bytes: [UInt8]) -> WireError? {
            var buffer = ByteBuffer(bytes: bytes)
            do {
                _ = try Handshake.decode(from: &buffer)
                return nil
            } catch {
                return error
            }
        }
        #expect(failure([18]) == WireError(.invalidProtocolName, offset: 0))
        #expect(failure(Array("GET / HTTP/1.1\r\n".utf8)) == WireError(.invalidProtocolName, offset: 0))
        #expect(failure([19] + Array("BitTorrent".utf8)) == nil, "a correct prefix waits")
        #expect(failure([19] + Array("BitTorrent Protocol".utf8)) == WireError(.invalidProtocolName, offset: 12))
        #expect(failure([]) == nil)
    }

    @Test func describesItself() {
        #expect(handshake.description.hasPrefix("handshake aaaaaaaa"))
    }
}
