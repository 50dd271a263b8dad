import NIOCore
import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalWire

@Suite("Peer message framing")
struct PeerMessageFramingTests {
    private static let block = ByteBuffer(bytes: (0..<16384).map { UInt8(truncatingIfNeeded: $0 &* 7) })

    /// A stream as a connection carries it: a handshake, then messages (the fixtures, and blocks).
    private static func stream() -> (bytes: [UInt8], messages: [PeerMessage]) {
        var buffer = ByteBuffer()
        let handshake = Handshake(reserved: ReservedBits(rawValue: 0), infoHash: Digest20(bytes: [UInt8](repeating: 9, count: 20))!,
                                  peerID: PeerID(bytes: [UInt8](repeating: 1, count: 20))!)
        handshake.write(to: &buffer)
        var messages = WireFixtures.everyMessage
        for index in 0..<6 { messages.append(.piece(piece: UInt32(index), offset: 16384, block: block)) }
        messages.append(.keepAlive)
        for message in messages { message.write(to: &buffer) }
        return (WireFixtures.bytes(buffer), messages)
    }

    /// Decodes `reads` as the torrent state machine does: from each read itself, a message cut by the end of a
    /// read kept and completed from the next. Returns the messages and how many bytes were copied.
    private static func decode(_ reads: [[UInt8]]) throws -> (messages: [PeerMessage], copied: Int) {
        var decoder = PeerMessageDecoder()
        var pending = ByteBuffer()
        var handshaken = false
        var messages: [PeerMessage] = []
        var copied = 0
        for read in reads {
            var bytes = ByteBuffer(bytes: read)
            while true {
                if pending.readableBytes == 0 {
                    guard bytes.readableBytes > 0 else { break }
                    pending = bytes
                    bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
                } else {
                    copied += PeerMessageFraming.complete(&pending, from: &bytes, handshake: !handshaken)
                }
                if !handshaken {
                    guard try Handshake.decode(from: &pending) != nil else {
                        if bytes.readableBytes > 0 { continue } else { break }
                    }
                    handshaken = true
                } else {
                    guard let message = try decoder.next(from: &pending) else {
                        if bytes.readableBytes > 0 { continue } else { break }
                    }
                    messages.append(message)
                }
            }
            let kept = PeerMessageFraming.keepPartial(pending, handshake: !handshaken)
            if kept.readableBytes > 0 && kept.readerIndex == 0 && pending.readerIndex != 0 { copied += kept.readableBytes }
            pending = kept
        }
        #expect(pending.readableBytes == 0)
        return (messages, copied)
    }

    @Test func everySplitDecodesTheSameMessages() throws {
        let (bytes, messages) = Self.stream()
        var random = SeededGenerator(seed: 11)
        // Four rounds of each read size: byte-at-a-time rounds take seconds each in a debug build.
        for round in 0..<24 {
            var reads: [[UInt8]] = []
            var start = 0
            let maxRead = [1, 3, 13, 100, 5000, 40000][round % 6]
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...maxRead, using: &random))
                reads.append(Array(bytes[start..<end]))
                start = end
            }
            let (decoded, copied) = try Self.decode(reads)
            #expect(decoded == messages, "round \(round)")
            // Only the messages cut by the end of a read are copied.
            let cutAt = reads.count - 1
            #expect(copied <= cutAt * (16384 + 13), "round \(round)")
        }
    }

    @Test func oneReadCopiesNothing() throws {
        let (bytes, messages) = Self.stream()
        let (decoded, copied) = try Self.decode([bytes])
        #expect(decoded == messages)
        #expect(copied == 0)
    }

    @Test func completeMovesThePrefixThenTheRest() {
        let encoded = WireFixtures.bytes(PeerMessage.have(piece: 7).encoded)
        var pending = ByteBuffer(bytes: encoded[0..<2])
        var bytes = ByteBuffer(bytes: encoded[2...] + [0xAA, 0xBB])
        #expect(PeerMessageFraming.complete(&pending, from: &bytes, handshake: false) == 2)
        #expect(pending.readableBytes == 4)
        #expect(PeerMessageFraming.complete(&pending, from: &bytes, handshake: false) == 5)
        #expect(WireFixtures.bytes(pending) == encoded)
        #expect(PeerMessageFraming.complete(&pending, from: &bytes, handshake: false) == 0)
        #expect(bytes.readableBytes == 2)

        var handshake = ByteBuffer(bytes: [19])
        var rest = ByteBuffer(bytes: [UInt8](repeating: 0, count: 100))
        #expect(PeerMessageFraming.complete(&handshake, from: &rest, handshake: true) == 67)
        #expect(PeerMessageFraming.messageLength(startingAt: handshake, handshake: true) == 68)
    }

    @Test func keepPartialCopiesIntoABufferSizedForTheMessage() {
        var read = ByteBufferAllocator().buffer(capacity: 1 << 20)
        read.writeBytes([UInt8](repeating: 0, count: 100))
        PeerMessage.piece(piece: 1, offset: 0, block: Self.block).write(to: &read)
        read.moveReaderIndex(forwardBy: 100)
        read.moveWriterIndex(to: 100 + 20)
        let kept = PeerMessageFraming.keepPartial(read, handshake: false)
        #expect(kept.readableBytes == 20)
        #expect(kept.capacity >= 16384 + 13 && kept.capacity < 1 << 20)
        #expect(PeerMessageFraming.keepPartial(kept, handshake: false).capacity == kept.capacity)
        #expect(PeerMessageFraming.keepPartial(ByteBuffer(), handshake: false).readableBytes == 0)
    }

    @Test func encodedPartsAreTheEncoding() {
        for message in WireFixtures.everyMessage + [.piece(piece: 3, offset: 32768, block: Self.block)] {
            let parts = message.encodedParts
            var joined = parts.head
            if case .piece = message {
                #expect(parts.head.readableBytes == PeerMessage.pieceHeaderLength)
                #expect(parts.body != nil)
            } else {
                #expect(parts.body == nil)
            }
            if var body = parts.body { joined.writeBuffer(&body) }
            #expect(joined == message.encoded, "\(message)")
        }
    }
}
