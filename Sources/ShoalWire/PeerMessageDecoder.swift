import NIOCore

/// A push decoder for the peer wire messages that follow the handshake (BEP 3 "peer messages").
///
/// Feed it the bytes as they arrive; ``next(from:)`` returns one message and consumes exactly its
/// bytes, or returns nil (consuming nothing) while the buffer holds only part of one. A message
/// longer than its legal size is refused as soon as its length prefix (and id byte) have arrived,
/// before its body is buffered (see ``WireLimits``). On an error nothing is consumed and the
/// connection should be closed as ``WireError/disposition`` says.
///
/// Semantic checks that need the connection's state (piece indices, message order, negotiated
/// extensions) belong to the state machine, ``PeerConnection/StateMachine``.
public struct PeerMessageDecoder: Sendable {
    public var limits: WireLimits
    /// The torrent's piece count, once known: a bitfield must then have exactly
    /// `ceil(pieceCount / 8)` bytes and no spare bit set. Nil while unknown (a magnet link before
    /// its metadata): a bitfield is then only bounded by ``WireLimits/maxBitfieldBytes``.
    public var pieceCount: Int?
    /// The bytes consumed so far: the stream offset of the next message (errors report offsets
    /// from the first byte this decoder was fed).
    public private(set) var bytesConsumed: Int = 0

    public init(pieceCount: Int? = nil, limits: WireLimits = WireLimits()) {
        self.pieceCount = pieceCount
        self.limits = limits
    }

    /// The next whole message, or nil while more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(WireError) -> PeerMessage? {
        let head = buffer.withUnsafeReadableBytes { Head($0) }
        guard let declared = head.declared else { return nil }
        if declared == 0 {
            buffer.moveReaderIndex(forwardBy: 4)
            bytesConsumed += 4
            return .keepAlive
        }
        let length = Int(declared)
        // The length prefix alone: nothing may be longer than the longest legal message. (Checked
        // before the id even when the id has arrived, so an error never depends on how the bytes
        // were split.)
        if length > maxMessageLength {
            throw WireError(.messageTooLong(limit: maxMessageLength), declaredLength: declared, offset: bytesConsumed)
        }
        guard let id = head.id else { return nil }
        // The prefix and the id: each message has its own bounds.
        try checkLength(length, id: id, declared: declared)
        guard buffer.readableBytes >= 4 + length else { return nil }

        let message = try parse(id: id, head: head, buffer: buffer, length: length, declared: declared)
        buffer.moveReaderIndex(forwardBy: 4 + length)
        bytesConsumed += 4 + length
        return message
    }

    /// The bytes of a `piece` message before its block: length prefix, id, index and offset.
    public static let pieceHeadLength = 13

    /// The length of the block that follows when `head` is exactly the head of a `piece` message (its length
    /// unchecked); nil otherwise.
    public static func blockLength(afterPieceHead head: ByteBuffer) -> Int? {
        guard head.readableBytes == pieceHeadLength else { return nil }
        let fields = head.withUnsafeReadableBytes { Head($0) }
        guard let declared = fields.declared, fields.id == PeerMessageID.piece.rawValue, declared >= 9 else { return nil }
        return Int(declared) - 9
    }

    /// A `piece` message whose head (``pieceHeadLength`` bytes) is all of `head` and whose block is the front
    /// of `body`: the block is sliced from `body` instead of being copied after its head. This is the common
    /// way a message is split, since a sender writes a block's head and the block from two buffers. Nil,
    /// consuming nothing, unless `head` is exactly such a head and `body` holds the whole block; `head` is
    /// checked as ``next(from:)`` checks a message.
    public mutating func nextPiece(head: ByteBuffer, body: inout ByteBuffer) throws(WireError) -> PeerMessage? {
        guard head.readableBytes == Self.pieceHeadLength else { return nil }
        let fields = head.withUnsafeReadableBytes { Head($0) }
        guard let declared = fields.declared, fields.id == PeerMessageID.piece.rawValue else { return nil }
        let length = Int(declared)
        if length > maxMessageLength {
            throw WireError(.messageTooLong(limit: maxMessageLength), declaredLength: declared, offset: bytesConsumed)
        }
        try checkLength(length, id: PeerMessageID.piece.rawValue, declared: declared)
        guard length >= 9, body.readableBytes >= length - 9, let block = body.readSlice(length: length - 9) else {
            return nil
        }
        bytesConsumed += 4 + length
        return .piece(piece: fields.field(0), offset: fields.field(1), block: block)
    }

    /// The longest length prefix any message may have under the current limits.
    public var maxMessageLength: Int {
        let bitfield = 1 + (pieceCount.map(Self.bitfieldBytes) ?? limits.maxBitfieldBytes)
        let piece = 9 + Int(limits.maxBlockLength)
        let extended = 2 + limits.maxExtendedPayload
        let unknown = 1 + limits.maxUnknownPayload
        return max(bitfield, piece, extended, unknown, 13)
    }

    private func checkLength(_ length: Int, id: UInt8, declared: UInt32) throws(WireError) {
        func fail(_ code: WireError.Code) -> WireError {
            WireError(code, messageID: id, declaredLength: declared, offset: bytesConsumed)
        }
        guard let known = PeerMessageID(rawValue: id) else {
            let limit = 1 + limits.maxUnknownPayload
            if length > limit { throw fail(.messageTooLong(limit: limit)) }
            return
        }
        if let fixed = known.fixedLength {
            if length != fixed { throw fail(.wrongLength(expected: fixed)) }
            return
        }
        switch known {
        case .bitfield:
            if let pieceCount {
                let expected = 1 + Self.bitfieldBytes(pieceCount)
                if length != expected { throw fail(.wrongLength(expected: expected)) }
            } else if length > 1 + limits.maxBitfieldBytes {
                throw fail(.messageTooLong(limit: 1 + limits.maxBitfieldBytes))
            }
        case .piece:
            if length < 9 { throw fail(.messageTooShort(minimum: 9)) }
            let limit = 9 + Int(limits.maxBlockLength)
            if length > limit { throw fail(.messageTooLong(limit: limit)) }
        case .extended:
            if length < 2 { throw fail(.messageTooShort(minimum: 2)) }
            let limit = 2 + limits.maxExtendedPayload
            if length > limit { throw fail(.messageTooLong(limit: limit)) }
        default:
            break
        }
    }

    /// The message whose whole `length` bytes (after the prefix) are in `buffer`, from its reader index.
    private func parse(
        id: UInt8, head: Head, buffer: ByteBuffer, length: Int, declared: UInt32
    ) throws(WireError) -> PeerMessage {
        func fail(_ code: WireError.Code) -> WireError {
            WireError(code, messageID: id, declaredLength: declared, offset: bytesConsumed)
        }
        func block() throws(WireError) -> BlockRequest {
            let length = head.field(2)
            guard length > 0, length <= limits.maxBlockLength else {
                throw fail(.invalidBlockLength(length, limit: limits.maxBlockLength))
            }
            return BlockRequest(piece: head.field(0), offset: head.field(1), length: length)
        }
        /// The bytes of the message from `offset` (counted from the id) to its end.
        func payload(from offset: Int) -> ByteBuffer {
            buffer.getSlice(at: buffer.readerIndex + 4 + offset, length: length - offset)!
        }
        guard let known = PeerMessageID(rawValue: id) else { return .unknown(id: id, payload: payload(from: 1)) }
        switch known {
        case .choke: return .choke
        case .unchoke: return .unchoke
        case .interested: return .interested
        case .notInterested: return .notInterested
        case .haveAll: return .haveAll
        case .haveNone: return .haveNone
        case .have: return .have(piece: head.field(0))
        case .suggestPiece: return .suggestPiece(head.field(0))
        case .allowedFast: return .allowedFast(head.field(0))
        case .port: return .port(UInt16(truncatingIfNeeded: head.field(0) >> 16))
        case .request: return .request(try block())
        case .cancel: return .cancel(try block())
        case .rejectRequest: return .rejectRequest(try block())
        case .bitfield:
            let body = payload(from: 1)
            if let pieceCount, Self.hasSpareBits(body, pieceCount: pieceCount) { throw fail(.bitfieldSpareBits) }
            return .bitfield(body)
        case .piece:
            return .piece(piece: head.field(0), offset: head.field(1), block: payload(from: 9))
        case .extended:
            return .extended(id: UInt8(truncatingIfNeeded: head.field(0) >> 24), payload: payload(from: 2))
        }
    }

    /// The start of a message, read in one access to the buffer: the length prefix, the id and the three
    /// 32-bit fields that may follow it (a request's), each nil or zero where the bytes have not arrived.
    /// Reading them one `getInteger` at a time cost a bounds check, an exclusivity check and a copy each.
    private struct Head {
        var declared: UInt32?
        var id: UInt8?
        private var fields: (UInt32, UInt32, UInt32) = (0, 0, 0)

        init(_ bytes: UnsafeRawBufferPointer) {
            func word(at offset: Int) -> UInt32 {
                guard bytes.count >= offset + 4 else {
                    // A field cut short: only its bytes that arrived, high first (a `port` has two).
                    var value: UInt32 = 0
                    for index in 0..<4 {
                        value <<= 8
                        if offset + index < bytes.count { value |= UInt32(bytes[offset + index]) }
                    }
                    return value
                }
                return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            }
            guard bytes.count >= 4 else { return }
            declared = word(at: 0)
            guard bytes.count >= 5 else { return }
            id = bytes[4]
            fields = (word(at: 5), word(at: 9), word(at: 13))
        }

        /// Field `index` (0, 1 or 2): the 32 bits from byte 5 + 4 × index of the message, big-endian.
        func field(_ index: Int) -> UInt32 {
            switch index {
            case 0: fields.0
            case 1: fields.1
            default: fields.2
            }
        }
    }

    static func bitfieldBytes(_ pieceCount: Int) -> Int {
        max(0, pieceCount / 8 + (pieceCount % 8 > 0 ? 1 : 0))
    }

    /// Whether a bitfield of the right size for `pieceCount` has a bit set past the last piece.
    static func hasSpareBits(_ bytes: ByteBuffer, pieceCount: Int) -> Bool {
        let spare = bytes.readableBytes * 8 - pieceCount
        guard spare > 0, let last = bytes.getInteger(at: bytes.writerIndex - 1, as: UInt8.self) else { return false }
        return last & UInt8(truncatingIfNeeded: (1 << spare) - 1) != 0
    }
}
