import NIOCore
import ShoalCore

/// One peer wire message (BEP 3 "peer messages"), with the BEP 5 `port`, the BEP 6 fast extension
/// messages and the BEP 10 `extended` envelope.
///
/// On the wire each is a 4-byte big-endian length, then (except keep-alive) an id byte and the
/// payload. Byte payloads (`bitfield`, a `piece`'s block, `extended`) are `ByteBuffer` slices of
/// the decoder's input: a 16 KiB block reaches storage without being copied.
public enum PeerMessage: Hashable, Sendable, CustomStringConvertible {
    /// Length 0, no id (BEP 3: "keepalives ... a zero-length message").
    case keepAlive
    /// BEP 3 `choke` (id 0).
    case choke
    /// BEP 3 `unchoke` (id 1).
    case unchoke
    /// BEP 3 `interested` (id 2).
    case interested
    /// BEP 3 `not interested` (id 3).
    case notInterested
    /// BEP 3 `have` (id 4): the sender has completed and checked a piece.
    case have(piece: UInt32)
    /// BEP 3 `bitfield` (id 5): the wire bytes, high bit of the first byte for piece 0. Kept raw
    /// because the piece count may not be known yet (a magnet link); see ``bitfield(_:)``.
    case bitfield(ByteBuffer)
    /// BEP 3 `request` (id 6).
    case request(BlockRequest)
    /// BEP 3 `piece` (id 7): a block, as a slice of the input.
    case piece(piece: UInt32, offset: UInt32, block: ByteBuffer)
    /// BEP 3 `cancel` (id 8).
    case cancel(BlockRequest)
    /// BEP 5 `port` (id 9): the sender's DHT port.
    case port(UInt16)
    /// BEP 6 `suggest piece` (id 13).
    case suggestPiece(UInt32)
    /// BEP 6 `have all` (id 14).
    case haveAll
    /// BEP 6 `have none` (id 15).
    case haveNone
    /// BEP 6 `reject request` (id 16).
    case rejectRequest(BlockRequest)
    /// BEP 6 `allowed fast` (id 17).
    case allowedFast(UInt32)
    /// BEP 10 `extended` (id 20): the extended message id (0 is the extension handshake) and its payload.
    case extended(id: UInt8, payload: ByteBuffer)
    /// A message whose id Shoal does not know, kept whole so it can be ignored (BEP 3: "Unknown
    /// message ids should be ignored") or re-encoded. Its id is never one of the ids above.
    case unknown(id: UInt8, payload: ByteBuffer)

    /// A `bitfield` message from a ``Bitfield``.
    public static func bitfield(_ field: Bitfield) -> PeerMessage {
        .bitfield(ByteBuffer(bytes: field.bytes))
    }

    /// The id byte; nil for keep-alive.
    public var id: UInt8? {
        switch self {
        case .keepAlive: nil
        case .choke: PeerMessageID.choke.rawValue
        case .unchoke: PeerMessageID.unchoke.rawValue
        case .interested: PeerMessageID.interested.rawValue
        case .notInterested: PeerMessageID.notInterested.rawValue
        case .have: PeerMessageID.have.rawValue
        case .bitfield: PeerMessageID.bitfield.rawValue
        case .request: PeerMessageID.request.rawValue
        case .piece: PeerMessageID.piece.rawValue
        case .cancel: PeerMessageID.cancel.rawValue
        case .port: PeerMessageID.port.rawValue
        case .suggestPiece: PeerMessageID.suggestPiece.rawValue
        case .haveAll: PeerMessageID.haveAll.rawValue
        case .haveNone: PeerMessageID.haveNone.rawValue
        case .rejectRequest: PeerMessageID.rejectRequest.rawValue
        case .allowedFast: PeerMessageID.allowedFast.rawValue
        case .extended: PeerMessageID.extended.rawValue
        case .unknown(let id, _): id
        }
    }

    /// The value of the length prefix: the bytes after it.
    public var length: Int {
        switch self {
        case .keepAlive: 0
        case .choke, .unchoke, .interested, .notInterested, .haveAll, .haveNone: 1
        case .have, .suggestPiece, .allowedFast: 5
        case .request, .cancel, .rejectRequest: 13
        case .port: 3
        case .bitfield(let bytes): 1 + bytes.readableBytes
        case .piece(_, _, let block): 9 + block.readableBytes
        case .extended(_, let payload): 2 + payload.readableBytes
        case .unknown(_, let payload): 1 + payload.readableBytes
        }
    }

    /// The whole encoding's size: the length prefix and what follows it.
    public var encodedLength: Int { 4 + length }

    /// Appends the message's encoding to `buffer`.
    ///
    /// For a `piece` this copies the block into `buffer`; to send a block without copying it,
    /// write ``writePieceHeader(_:to:)`` and then the block's own buffer (or a file region).
    public func write(to buffer: inout ByteBuffer) {
        let length = UInt32(truncatingIfNeeded: self.length)
        guard let id else {
            Self.writeFields(4, to: &buffer) { $0.storeBytes(of: length.bigEndian, as: UInt32.self) }
            return
        }
        switch self {
        case .keepAlive, .choke, .unchoke, .interested, .notInterested, .haveAll, .haveNone:
            Self.writeFields(5, to: &buffer) { Self.store(length, id, in: $0) }
        case .have(let piece), .suggestPiece(let piece), .allowedFast(let piece):
            Self.writeFields(9, to: &buffer) { bytes in
                Self.store(length, id, in: bytes)
                bytes.storeBytes(of: piece.bigEndian, toByteOffset: 5, as: UInt32.self)
            }
        case .request(let block), .cancel(let block), .rejectRequest(let block):
            Self.writeFields(17, to: &buffer) { bytes in
                Self.store(length, id, in: bytes)
                bytes.storeBytes(of: block.piece.bigEndian, toByteOffset: 5, as: UInt32.self)
                bytes.storeBytes(of: block.offset.bigEndian, toByteOffset: 9, as: UInt32.self)
                bytes.storeBytes(of: block.length.bigEndian, toByteOffset: 13, as: UInt32.self)
            }
        case .port(let port):
            Self.writeFields(7, to: &buffer) { bytes in
                Self.store(length, id, in: bytes)
                bytes.storeBytes(of: port.bigEndian, toByteOffset: 5, as: UInt16.self)
            }
        case .bitfield(let bytes), .unknown(_, let bytes):
            buffer.reserveCapacity(minimumWritableBytes: encodedLength)
            Self.writeFields(5, to: &buffer) { Self.store(length, id, in: $0) }
            buffer.writeImmutableBuffer(bytes)
        case .piece(let piece, let offset, let block):
            buffer.reserveCapacity(minimumWritableBytes: encodedLength)
            Self.writePieceHeader(length: length, piece: piece, offset: offset, to: &buffer)
            buffer.writeImmutableBuffer(block)
        case .extended(let extendedID, let payload):
            buffer.reserveCapacity(minimumWritableBytes: encodedLength)
            Self.writeFields(6, to: &buffer) { bytes in
                Self.store(length, id, in: bytes)
                bytes.storeBytes(of: extendedID, toByteOffset: 5, as: UInt8.self)
            }
            buffer.writeImmutableBuffer(payload)
        }
    }

    /// Appends `count` bytes that `store` puts in place: one capacity check for all the fields of a message.
    /// (NIO's `writeInteger`, and `writeMultipleIntegers` too, copy each field with a call of its own: about
    /// 1,500 instructions for a 17-byte request, against a hundred or so here.)
    @inline(__always)
    private static func writeFields(
        _ count: Int, to buffer: inout ByteBuffer, _ store: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            store(bytes)
            return count
        }
    }

    /// Stores the length prefix and the id at the start of `bytes`.
    @inline(__always)
    private static func store(_ length: UInt32, _ id: UInt8, in bytes: UnsafeMutableRawBufferPointer) {
        bytes.storeBytes(of: length.bigEndian, as: UInt32.self)
        bytes.storeBytes(of: id, toByteOffset: 4, as: UInt8.self)
    }

    /// The 13 bytes before a block: length prefix, id 7, piece index, offset.
    private static func writePieceHeader(length: UInt32, piece: UInt32, offset: UInt32, to buffer: inout ByteBuffer) {
        writeFields(pieceHeaderLength, to: &buffer) { bytes in
            store(length, PeerMessageID.piece.rawValue, in: bytes)
            bytes.storeBytes(of: piece.bigEndian, toByteOffset: 5, as: UInt32.self)
            bytes.storeBytes(of: offset.bigEndian, toByteOffset: 9, as: UInt32.self)
        }
    }

    /// The encoding as a new buffer.
    public var encoded: ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: encodedLength)
        write(to: &buffer)
        return buffer
    }

    /// The encoding in at most two buffers, to be sent one after the other: for a `piece`, its 13-byte
    /// header and then the block's own buffer, which is not copied; for every other message, the whole
    /// encoding (``encoded``) and nil.
    public var encodedParts: (head: ByteBuffer, body: ByteBuffer?) {
        guard case .piece(let piece, let offset, let block) = self else { return (encoded, nil) }
        var head = ByteBufferAllocator().buffer(capacity: Self.pieceHeaderLength)
        Self.writePieceHeader(
            length: UInt32(truncatingIfNeeded: 9 + block.readableBytes), piece: piece, offset: offset, to: &head)
        return (head, block)
    }

    /// Writes the 13 bytes that precede a block in a `piece` message (length prefix, id 7, piece
    /// index, offset), so the runtime can send the block's bytes from their own buffer or straight
    /// from disk. `block.length` bytes must follow.
    public static func writePieceHeader(_ block: BlockRequest, to buffer: inout ByteBuffer) {
        writePieceHeader(
            length: UInt32(truncatingIfNeeded: 9 + UInt64(block.length)), piece: block.piece, offset: block.offset,
            to: &buffer)
    }

    /// The length of a piece message's header (``writePieceHeader(_:to:)``).
    public static let pieceHeaderLength = 13

    public var description: String {
        switch self {
        case .keepAlive: "keep-alive"
        case .choke: "choke"
        case .unchoke: "unchoke"
        case .interested: "interested"
        case .notInterested: "not interested"
        case .have(let piece): "have \(piece)"
        case .bitfield(let bytes): "bitfield (\(bytes.readableBytes) bytes)"
        case .request(let block): "request \(block)"
        case .piece(let piece, let offset, let block): "piece \(piece) [\(offset)+\(block.readableBytes)]"
        case .cancel(let block): "cancel \(block)"
        case .port(let port): "port \(port)"
        case .suggestPiece(let piece): "suggest piece \(piece)"
        case .haveAll: "have all"
        case .haveNone: "have none"
        case .rejectRequest(let block): "reject request \(block)"
        case .allowedFast(let piece): "allowed fast \(piece)"
        case .extended(let id, let payload): "extended \(id) (\(payload.readableBytes) bytes)"
        case .unknown(let id, let payload): "unknown message \(id) (\(payload.readableBytes) bytes)"
        }
    }
}
