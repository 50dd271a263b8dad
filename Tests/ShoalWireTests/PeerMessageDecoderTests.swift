import NIOCore
import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalWire

@Suite("Peer message decoder")
struct PeerMessageDecoderTests {
    /// Decodes everything in `buffer`, fed in chunks of `chunk` bytes.
    private func decodeAll(
        _ bytes: [UInt8], chunk: Int, pieceCount: Int? = nil
    ) throws(WireError) -> [PeerMessage] {
        var decoder = PeerMessageDecoder(pieceCount: pieceCount)
        var buffer = ByteBuffer()
        var messages: [PeerMessage] = []
        var fed = 0
        while fed < bytes.count {
            let next = min(bytes.count, fed + chunk)
            buffer.writeBytes(bytes[fed..<next])
            fed = next
            while let message = try decoder.next(from: &buffer) { messages.append(message) }
        }
        #expect(buffer.readableBytes == 0, "bytes left over")
        #expect(decoder.bytesConsumed == bytes.count)
        return messages
    }

    private func encodeAll(_ messages: [PeerMessage]) -> [UInt8] {
        var buffer = ByteBuffer()
        for message in messages { message.write(to: &buffer) }
        return WireFixtures.bytes(buffer)
    }

    /// The error decoding `bytes` gives (nil when it gives none).
    private func error(_ bytes: [UInt8], pieceCount: Int? = nil, limits: WireLimits = WireLimits()) -> WireError? {
        var decoder = PeerMessageDecoder(pieceCount: pieceCount, limits: limits)
        var buffer = ByteBuffer(bytes: bytes)
        do {
            while try decoder.next(from: &buffer) != nil {}
            return nil
        } catch {
            return error
        }
    }

    @Test func decodesManyMessagesFromOneBuffer() throws {
        let bytes = encodeAll(WireFixtures.everyMessage)
        #expect(try decodeAll(bytes, chunk: bytes.count) == WireFixtures.everyMessage)
        #expect(try decodeAll(bytes, chunk: bytes.count, pieceCount: 121) == WireFixtures.everyMessage)
    }

    @Test func decodesByteAtATime() throws {
        let bytes = encodeAll(WireFixtures.everyMessage)
        #expect(try decodeAll(bytes, chunk: 1) == WireFixtures.everyMessage)
        #expect(try decodeAll(bytes, chunk: 3, pieceCount: 121) == WireFixtures.everyMessage)
    }

    @Test func returnsNilAndConsumesNothingUntilAMessageIsWhole() throws {
        let bytes = WireFixtures.bytes(PeerMessage.request(BlockRequest(piece: 1, offset: 2, length: 3)).encoded)
        var decoder = PeerMessageDecoder()
        var buffer = ByteBuffer()
        for byte in bytes.dropLast() {
            buffer.writeInteger(byte)
            let message = try decoder.next(from: &buffer)
            #expect(message == nil)
            #expect(buffer.readerIndex == 0)
        }
        buffer.writeInteger(bytes.last!)
        let message2 = try decoder.next(from: &buffer)
        #expect(message2 == .request(BlockRequest(piece: 1, offset: 2, length: 3)))
        #expect(buffer.readableBytes == 0)
        let message3 = try decoder.next(from: &buffer)
        #expect(message3 == nil)
    }

    @Test func consumesExactlyOneMessagePerCall() throws {
        var decoder = PeerMessageDecoder()
        var buffer = ByteBuffer(bytes: encodeAll([.choke, .have(piece: 3), .keepAlive]))
        let message = try decoder.next(from: &buffer)
        #expect(message == .choke)
        #expect(buffer.readableBytes == 9 + 4)
        let message2 = try decoder.next(from: &buffer)
        #expect(message2 == .have(piece: 3))
        let message3 = try decoder.next(from: &buffer)
        #expect(message3 == .keepAlive)
        let message4 = try decoder.next(from: &buffer)
        #expect(message4 == nil)
        #expect(decoder.bytesConsumed == 5 + 9 + 4)
    }

    @Test func blockIsASliceOfTheInputNotACopy() throws {
        let data = [UInt8](repeating: 0x5A, count: 16384)
        let buffer = ByteBuffer(bytes: encodeAll([.piece(piece: 3, offset: 0, block: ByteBuffer(bytes: data))]))
        var input = buffer
        var decoder = PeerMessageDecoder()
        guard case .piece(3, 0, let block) = try decoder.next(from: &input) else {
            Issue.record("not a piece")
            return
        }
        #expect(block.readableBytes == 16384)
        let inputBase = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let blockBase = block.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(blockBase == inputBase + 13, "the block shares the input's storage")
    }

    @Test func aBlockAfterItsHeadInAnotherBufferIsSlicedNotCopied() throws {
        let data = ByteBuffer(bytes: (0..<16384).map { UInt8(truncatingIfNeeded: $0) })
        let whole = encodeAll([.piece(piece: 7, offset: 16384, block: data), .have(piece: 2)])
        let head = ByteBuffer(bytes: whole[0..<PeerMessageDecoder.pieceHeadLength])
        var body = ByteBuffer(bytes: whole[PeerMessageDecoder.pieceHeadLength...])
        #expect(PeerMessageDecoder.blockLength(afterPieceHead: head) == 16384)
        var decoder = PeerMessageDecoder()
        let bodyBase = body.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        guard case .piece(7, 16384, let block) = try decoder.nextPiece(head: head, body: &body) else {
            Issue.record("not the piece")
            return
        }
        #expect(block == data)
        #expect(block.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == bodyBase)
        #expect(decoder.bytesConsumed == 13 + 16384)
        #expect(try decoder.next(from: &body) == .have(piece: 2), "the rest decodes as usual")
    }

    @Test func aSplitPieceHeadIsCheckedAndNeedsItsWholeBlock() throws {
        let whole = encodeAll([.piece(piece: 1, offset: 0, block: ByteBuffer(repeating: 1, count: 100))])
        let head = ByteBuffer(bytes: whole[0..<13])
        var decoder = PeerMessageDecoder()
        var short = ByteBuffer(bytes: whole[13..<50])
        #expect(try decoder.nextPiece(head: head, body: &short) == nil)
        #expect(short.readableBytes == 37 && decoder.bytesConsumed == 0, "nothing consumed")
        // Not a piece head: a have and a 12-byte start of a request.
        #expect(PeerMessageDecoder.blockLength(afterPieceHead: ByteBuffer(bytes: encodeAll([.have(piece: 1)]))) == nil)
        #expect(PeerMessageDecoder.blockLength(afterPieceHead: ByteBuffer(bytes: whole[0..<12])) == nil)
        // A head declaring a block over 16 KiB is refused as from the whole message.
        var long = ByteBuffer(bytes: [0, 0, 0x40, 0x0A, 7, 0, 0, 0, 1, 0, 0, 0, 0])
        let longHead = long.readSlice(length: 13)!
        var body = ByteBuffer(repeating: 0, count: 16385)
        #expect(throws: WireError.self) { try decoder.nextPiece(head: longHead, body: &body) }
    }

    @Test func unknownIdsDecodeToAValueToIgnore() throws {
        let messages = try decodeAll([0, 0, 0, 3, 42, 1, 2, 0, 0, 0, 1, 1], chunk: 12)
        #expect(messages == [.unknown(id: 42, payload: ByteBuffer(bytes: [1, 2])), .unchoke])
    }

    // MARK: Errors

    @Test func refusesAnOverlongMessageFromItsLengthPrefixAlone() throws {
        // Only the prefix has arrived: 4 GiB is longer than any message can be.
        let failure = try #require(error([0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(failure.code == .messageTooLong(limit: PeerMessageDecoder().maxMessageLength))
        #expect(failure.messageID == nil)
        #expect(failure.declaredLength == 0xFFFF_FFFF)
        #expect(failure.offset == 0)
        #expect(failure.disposition == .close)
        // With its id too, a message over every bound fails the same way, whatever the split.
        let extended = try #require(error(WireFixtures.be32(2 + (1 << 20) + 1) + [20]))
        #expect(extended.code == .messageTooLong(limit: 2 + (1 << 20)))
        #expect(extended.messageID == nil)
    }

    @Test func refusesEachMessageOverItsOwnBoundBeforeItsBody() throws {
        // Each case gives only the 5 bytes of prefix and id.
        let cases: [(length: UInt32, id: UInt8, code: WireError.Code)] = [
            (2, 0, .wrongLength(expected: 1)),  // choke
            (1, 4, .wrongLength(expected: 5)),  // have
            (14, 6, .wrongLength(expected: 13)),  // request
            (12, 8, .wrongLength(expected: 13)),  // cancel
            (5, 9, .wrongLength(expected: 3)),  // port
            (6, 13, .wrongLength(expected: 5)),  // suggest
            (2, 14, .wrongLength(expected: 1)),  // have all
            (0x10, 15, .wrongLength(expected: 1)),  // have none
            (13 + 1, 16, .wrongLength(expected: 13)),  // reject
            (4, 17, .wrongLength(expected: 5)),  // allowed fast
            (8, 7, .messageTooShort(minimum: 9)),  // piece without its header
            (9 + 16384 + 1, 7, .messageTooLong(limit: 9 + 16384)),  // a block over 16 KiB
            (1, 20, .messageTooShort(minimum: 2)),  // extended without its id
            (1 + (1 << 20) + 1, 99, .messageTooLong(limit: 1 + (1 << 20))),  // unknown
            (1 + (1 << 20) + 1, 5, .messageTooLong(limit: 1 + (1 << 20))),  // bitfield, count unknown
        ]
        for (length, id, code) in cases {
            let failure = error(WireFixtures.be32(length) + [id])
            #expect(failure?.code == code, "id \(id) length \(length)")
            #expect(failure?.messageID == id)
            #expect(failure?.declaredLength == length)
        }
    }

    @Test func bitfieldOfAKnownCountMustHaveExactlyItsSize() throws {
        // 10 pieces: 2 bytes.
        #expect(error([0, 0, 0, 3, 5, 0xFF, 0xC0], pieceCount: 10) == nil)
        #expect(error([0, 0, 0, 2, 5], pieceCount: 10)?.code == .wrongLength(expected: 3))
        #expect(error([0, 0, 0, 4, 5], pieceCount: 10)?.code == .wrongLength(expected: 3))
        // A count that makes the 1 MiB default too small is still accepted at its exact size.
        let big = 9_000_000
        var decoder = PeerMessageDecoder(pieceCount: big)
        var header = ByteBuffer(bytes: WireFixtures.be32(UInt32(1 + (big + 7) / 8)) + [5])
        let message = try decoder.next(from: &header)
        #expect(message == nil, "waits for the body")
    }

    @Test func bitfieldWithSpareBitsSetIsABan() throws {
        let failure = try #require(error([0, 0, 0, 3, 5, 0xFF, 0xE0], pieceCount: 10))
        #expect(failure.code == .bitfieldSpareBits)
        #expect(failure.disposition == .ban)
        // Without a piece count the decoder cannot tell; the state machine checks later.
        #expect(error([0, 0, 0, 3, 5, 0xFF, 0xE0]) == nil)
    }

    @Test func refusesBlocksOfZeroOrMoreThan16KiB() throws {
        for id: UInt8 in [6, 8, 16] {
            for length: UInt32 in [0, 16385, 0xFFFF_FFFF] {
                let bytes = [0, 0, 0, 13, id] + WireFixtures.be32(1) + WireFixtures.be32(0) + WireFixtures.be32(length)
                let failure = error(bytes)
                #expect(failure?.code == .invalidBlockLength(length, limit: 16384), "id \(id) length \(length)")
                #expect(failure?.messageID == id)
            }
            let fine = [0, 0, 0, 13, id] + WireFixtures.be32(1) + WireFixtures.be32(0) + WireFixtures.be32(16384)
            #expect(error(fine) == nil)
        }
    }

    @Test func errorsReportTheStreamOffsetAndConsumeNothing() throws {
        var decoder = PeerMessageDecoder()
        var buffer = ByteBuffer(bytes: encodeAll([.keepAlive, .interested]) + [0, 0, 0, 2, 2, 0])
        let message = try decoder.next(from: &buffer)
        #expect(message == .keepAlive)
        let message2 = try decoder.next(from: &buffer)
        #expect(message2 == .interested)
        let before = buffer.readerIndex
        #expect(throws: WireError(.wrongLength(expected: 1), messageID: 2, declaredLength: 2, offset: 9)) {
            try decoder.next(from: &buffer)
        }
        #expect(buffer.readerIndex == before)
    }

    @Test func limitsCanBeLowered() {
        let limits = WireLimits(maxBlockLength: 1024, maxBitfieldBytes: 4, maxExtendedPayload: 10, maxUnknownPayload: 0)
        #expect(error(WireFixtures.be32(9 + 1025) + [7], limits: limits)?.code == .messageTooLong(limit: 9 + 1024))
        #expect(error(WireFixtures.be32(6) + [5], limits: limits)?.code == .messageTooLong(limit: 5))
        #expect(error(WireFixtures.be32(13) + [20], limits: limits)?.code == .messageTooLong(limit: 12))
        #expect(error(WireFixtures.be32(2) + [30], limits: limits)?.code == .messageTooLong(limit: 1))
        #expect(error(WireFixtures.be32(1) + [30], limits: limits) == nil)
        #expect(PeerMessageDecoder(limits: limits).maxMessageLength == 9 + 1024)
    }

    @Test func errorsDescribeThemselves() {
        let failure = WireError(.wrongLength(expected: 5), messageID: 4, declaredLength: 6, offset: 100)
        #expect(failure.description == "peer wire: message length is not 5, message id 4, declared length 6, at byte 100")
    }

    // MARK: Properties

    /// Random message sequences, encoded and decoded in random chunks, come back the same.
    @Test func roundTripsGeneratedMessages() throws {
        var random = SeededGenerator(seed: 0x5EED)
        for _ in 0..<300 {
            let pieceCount = 1 + random.next(upTo: 300)
            let messages = (0..<random.next(upTo: 20)).map { _ in WireFixtures.randomMessage(&random, pieceCount: pieceCount) }
            let bytes = encodeAll(messages)
            let chunk = 1 + random.next(upTo: 64)
            #expect(try decodeAll(bytes, chunk: chunk, pieceCount: pieceCount) == messages)
            #expect(try decodeAll(bytes, chunk: bytes.count + 1) == messages)
        }
    }

    /// Random bytes never trap: each input either decodes or fails with a typed error.
    @Test func randomBytesDecodeOrFailCleanly() {
        var random = SeededGenerator(seed: 77)
        for _ in 0..<500 {
            // Small length prefixes, so that most inputs reach the message bodies.
            var bytes: [UInt8] = []
            for _ in 0..<random.next(upTo: 8) {
                let length = random.next(upTo: 20)
                bytes += WireFixtures.be32(UInt32(length))
                bytes += (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            var decoder = PeerMessageDecoder(pieceCount: 40)
            var buffer = ByteBuffer(bytes: bytes)
            while true {
                let before = buffer
                do {
                    guard let message = try decoder.next(from: &buffer) else { break }
                    let consumed = before.getSlice(at: before.readerIndex, length: buffer.readerIndex - before.readerIndex)
                    #expect(consumed == message.encoded)
                } catch {
                    #expect(buffer.readerIndex == before.readerIndex)
                    break
                }
            }
        }
    }
}
