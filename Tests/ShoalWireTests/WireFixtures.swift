import NIOCore
import ShoalCore
import ShoalTestSupport

@testable import ShoalWire

/// Shared values and helpers for the wire tests.
enum WireFixtures {
    static let infoHash = Digest20(bytes: [UInt8](repeating: 0xAA, count: 20))!
    static let otherInfoHash = Digest20(bytes: [UInt8](repeating: 0xBB, count: 20))!
    static let ourID = PeerID(bytes: Array("-SH0100-aaaaaaaaaaaa".utf8))!
    static let theirID = PeerID(bytes: Array("-TR3000-bbbbbbbbbbbb".utf8))!

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

    /// Big-endian bytes of a 32-bit value.
    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// A time `seconds` after zero.
    static func at(_ seconds: Int64) -> Instant { .zero + .seconds(seconds) }

    /// Deterministic block contents: a function of where the bytes are.
    static func blockData(_ block: BlockRequest) -> ByteBuffer {
        ByteBuffer(bytes: (0..<Int(block.length)).map { UInt8(truncatingIfNeeded: Int(block.piece) &* 31 &+ Int(block.offset) &+ $0) })
    }

    /// One of every kind of message, with payloads.
    static let everyMessage: [PeerMessage] = [
        .keepAlive, .choke, .unchoke, .interested, .notInterested,
        .have(piece: 7),
        .bitfield(ByteBuffer(bytes: [0b1010_0000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0b1000_0000])),
        .request(BlockRequest(piece: 1, offset: 16384, length: 16384)),
        .piece(piece: 1, offset: 16384, block: ByteBuffer(bytes: [1, 2, 3, 4, 5])),
        .cancel(BlockRequest(piece: 2, offset: 0, length: 100)),
        .port(6881),
        .suggestPiece(9), .haveAll, .haveNone,
        .rejectRequest(BlockRequest(piece: 3, offset: 32768, length: 1)),
        .allowedFast(126),
        .extended(id: 0, payload: ByteBuffer(bytes: Array("d1:md6:ut_pexi1eee".utf8))),
        .extended(id: 3, payload: ByteBuffer()),
        .unknown(id: 21, payload: ByteBuffer(bytes: [9, 9])),
        .unknown(id: 255, payload: ByteBuffer()),
    ]

    /// A random message valid for a torrent of `pieceCount` pieces.
    static func randomMessage(_ random: inout SeededGenerator, pieceCount: Int) -> PeerMessage {
        func piece() -> UInt32 { UInt32(random.next(upTo: pieceCount)) }
        func block() -> BlockRequest {
            BlockRequest(piece: piece(), offset: UInt32(random.next(upTo: 64)) * 16384, length: UInt32(1 + random.next(upTo: 16384)))
        }
        func payload(_ limit: Int) -> ByteBuffer {
            ByteBuffer(bytes: (0..<random.next(upTo: limit)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
        switch random.next(upTo: 18) {
        case 0: return .keepAlive
        case 1: return .choke
        case 2: return .unchoke
        case 3: return .interested
        case 4: return .notInterested
        case 5: return .have(piece: piece())
        case 6:
            var field = Bitfield(count: pieceCount)
            for _ in 0..<random.next(upTo: pieceCount + 1) { field.set(random.next(upTo: pieceCount)) }
            return .bitfield(field)
        case 7: return .request(block())
        case 8:
            let block = block()
            return .piece(piece: block.piece, offset: block.offset, block: payload(Int(block.length)))
        case 9: return .cancel(block())
        case 10: return .port(UInt16(truncatingIfNeeded: random.next()))
        case 11: return .suggestPiece(piece())
        case 12: return .haveAll
        case 13: return .haveNone
        case 14: return .rejectRequest(block())
        case 15: return .allowedFast(piece())
        case 16: return .extended(id: UInt8(truncatingIfNeeded: random.next()), payload: payload(300))
        default:
            let unknownIDs: [UInt8] = [10, 11, 12, 18, 19, 21, 22, 23, 200, 255]
            return .unknown(id: unknownIDs[random.next(upTo: unknownIDs.count)], payload: payload(100))
        }
    }
}
