import NIOCore
import ShoalBencode

/// A BEP 9 `ut_metadata` message: the payload of a BEP 10 `extended` message sent under the id the
/// receiver gave `ut_metadata` in its extension handshake.
///
/// BEP 9 ("extension message"): a bencoded dictionary with `msg_type` (0 request, 1 data, 2 reject)
/// and `piece` (the index of a 16 KiB piece of the info dictionary); a data message adds `total_size`
/// and carries the piece's bytes after the dictionary, inside the same message. Every piece is
/// 16 KiB but the last, which holds the rest.
///
/// Decoding is strict about what BEP 9 fixes and lenient about the rest: unknown keys are ignored,
/// an unknown `msg_type` is ignored as a whole (BEP 9: "an unrecognized message ID MUST be
/// ignored"; ``decode(_:)`` returns nil), but a data message whose bytes are not exactly its
/// piece's length, a piece index past the metadata, or bytes after a request or reject are errors
/// (the connection closes). Encoding is canonical (keys sorted).
public enum MetadataMessage: Hashable, Sendable, CustomStringConvertible {
    /// `msg_type` 0: the sender asks for a piece of the metadata.
    case request(piece: Int)
    /// `msg_type` 1: a piece of the metadata. `block` is a slice of the received payload.
    case data(piece: Int, totalSize: Int, block: ByteBuffer)
    /// `msg_type` 2: the sender does not have (or will not send) this piece.
    case reject(piece: Int)

    /// The name in the extension handshake's `m` (BEP 9 "extension header").
    public static let extensionName = "ut_metadata"
    /// The size of every metadata piece but the last (BEP 9 "metadata": 16 KiB).
    public static let pieceLength = 16384
    /// The most pieces metadata may have: ``ExtensionHandshake/maxMetadataSize`` in 16 KiB pieces.
    public static let maxPieceCount = (ExtensionHandshake.maxMetadataSize + pieceLength - 1) / pieceLength

    /// Bounds on the dictionary before a data message's bytes: a few small keys in real messages;
    /// a peer's padding costs us at most this.
    static let dictionaryLimits = BencodeLimits(maxDepth: 4, maxItems: 64, maxStringLength: 1024, maxIntegerDigits: 19)

    /// What was wrong with a `ut_metadata` payload.
    public enum Fault: Hashable, Sendable, CustomStringConvertible {
        /// The payload does not start with a bencoded dictionary.
        case notADictionary(BencodeError?)
        /// `msg_type` is missing or not an integer.
        case missingMessageType
        /// `piece` is missing or not an integer.
        case missingPiece
        /// `piece` is negative or past the largest metadata (or, in a data message, past `total_size`).
        case pieceOutOfRange(Int64)
        /// A data message whose `total_size` is missing, not an integer, or not in 1...max.
        case invalidTotalSize(Int64?)
        /// A data message whose bytes are not its piece's length (16 KiB, or the rest for the last piece).
        case wrongPieceLength(expected: Int, actual: Int)
        /// Bytes after the dictionary of a request or reject.
        case trailingBytes(Int)

        public var description: String {
            switch self {
            case .notADictionary(let error): "not a bencoded dictionary" + (error.map { " (\($0))" } ?? "")
            case .missingMessageType: "no integer msg_type"
            case .missingPiece: "no integer piece"
            case .pieceOutOfRange(let piece): "piece \(piece) is out of range"
            case .invalidTotalSize(let size): "total_size \(size.map(String.init) ?? "missing") is not in 1...\(ExtensionHandshake.maxMetadataSize)"
            case .wrongPieceLength(let expected, let actual): "a piece of \(actual) bytes where \(expected) belong"
            case .trailingBytes(let count): "\(count) bytes after a request or reject"
            }
        }
    }

    /// The piece index the message is about.
    public var piece: Int {
        switch self {
        case .request(let piece), .data(let piece, _, _), .reject(let piece): piece
        }
    }

    /// How many 16 KiB pieces metadata of `totalSize` bytes has.
    public static func pieceCount(totalSize: Int) -> Int {
        (max(totalSize, 0) + pieceLength - 1) / pieceLength
    }

    /// The length of piece `piece` of metadata of `totalSize` bytes; nil when there is no such piece.
    public static func length(ofPiece piece: Int, totalSize: Int) -> Int? {
        guard piece >= 0, piece < pieceCount(totalSize: totalSize) else { return nil }
        return min(pieceLength, totalSize - piece * pieceLength)
    }

    /// Decodes a `ut_metadata` payload (the bytes after the extended message id). Returns nil for a
    /// message of a type BEP 9 does not define, which the receiver must ignore.
    public static func decode(_ payload: ByteBuffer) throws(WireError) -> MetadataMessage? {
        func fault(_ fault: Fault) -> WireError {
            WireError(.invalidMetadataMessage(fault), messageID: PeerMessageID.extended.rawValue)
        }
        let bytes = Array(payload.readableBytesView)
        let document: BencodeDocument
        do {
            document = try BencodeDocument.decodePrefix(of: bytes, limits: dictionaryLimits)
        } catch {
            throw fault(.notADictionary(error))
        }
        let root = document.root
        guard root.kind == .dictionary else { throw fault(.notADictionary(nil)) }
        guard let type = root["msg_type"]?.integer else { throw fault(.missingMessageType) }
        guard (0...2).contains(type) else { return nil }
        guard let piece = root["piece"]?.integer else { throw fault(.missingPiece) }
        guard piece >= 0, piece < Int64(maxPieceCount) else { throw fault(.pieceOutOfRange(piece)) }
        let trailing = bytes.count - document.end
        switch type {
        case 0, 2:
            guard trailing == 0 else { throw fault(.trailingBytes(trailing)) }
            return type == 0 ? .request(piece: Int(piece)) : .reject(piece: Int(piece))
        default:
            let total = root["total_size"]?.integer
            guard let total, total >= 1, total <= Int64(ExtensionHandshake.maxMetadataSize) else {
                throw fault(.invalidTotalSize(total))
            }
            guard let expected = length(ofPiece: Int(piece), totalSize: Int(total)) else {
                throw fault(.pieceOutOfRange(piece))
            }
            guard trailing == expected else { throw fault(.wrongPieceLength(expected: expected, actual: trailing)) }
            let block = payload.getSlice(at: payload.readerIndex + document.end, length: trailing) ?? ByteBuffer()
            return .data(piece: Int(piece), totalSize: Int(total), block: block)
        }
    }

    /// The payload: the canonical dictionary, and for data the piece's bytes after it.
    public var payload: ByteBuffer {
        var dictionary: [String: BencodeValue] = ["piece": .integer(Int64(piece))]
        var block: ByteBuffer?
        switch self {
        case .request:
            dictionary["msg_type"] = 0
        case .data(_, let totalSize, let bytes):
            dictionary["msg_type"] = 1
            dictionary["total_size"] = .integer(Int64(totalSize))
            block = bytes
        case .reject:
            dictionary["msg_type"] = 2
        }
        let head = BencodeValue.dictionary(dictionary).encoded
        var buffer = ByteBufferAllocator().buffer(capacity: head.count + (block?.readableBytes ?? 0))
        buffer.writeBytes(head)
        if let block { buffer.writeImmutableBuffer(block) }
        return buffer
    }

    /// The `extended` peer message that carries this one under `id` (the receiver's id for `ut_metadata`).
    public func message(id: UInt8) -> PeerMessage { .extended(id: id, payload: payload) }

    public var description: String {
        switch self {
        case .request(let piece): "metadata request \(piece)"
        case .data(let piece, let totalSize, let block): "metadata data \(piece) (\(block.readableBytes) of \(totalSize) bytes)"
        case .reject(let piece): "metadata reject \(piece)"
        }
    }
}
