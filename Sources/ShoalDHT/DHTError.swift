import ShoalBencode

/// Why a DHT datagram or a saved state file was refused: what was wrong, in which field, at which byte.
///
/// Every decoder in this module throws this one type. A refused datagram costs nothing but the decoding:
/// the node drops it (and answers a malformed query with error 203 when it could read its transaction id,
/// ``replyTransactionID``).
public struct DHTError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// Not well-formed bencode (or over the bencode limits).
        case bencode(BencodeError.Code)
        /// The datagram is longer than ``KRPCLimits/maxDatagramLength``.
        case datagramTooLarge(length: Int, limit: Int)
        /// A required key is absent.
        case missingField
        /// A value of the wrong kind (a list where a string belongs, ...).
        case wrongType(expected: BencodeKind)
        /// A string of the wrong length (a node id that is not 20 bytes, a compact address of 7 bytes).
        case wrongLength(expected: Int, actual: Int)
        /// Compact node info whose length is not a multiple of one entry's length.
        case notMultiple(of: Int, actual: Int)
        /// A string over its limit (transaction id, token, version).
        case tooLong(limit: Int)
        /// A list with more entries than the limit.
        case tooMany(limit: Int)
        /// `y` is not `q`, `r` or `e`.
        case unknownMessageType
        /// A value out of its range (a port over 65535, a negative error code).
        case outOfRange
        /// A saved state file of another format version.
        case unsupportedVersion(Int64)
    }

    public var code: Code
    /// The field, as a path of keys: `a.info_hash`, `r.nodes`, `t`.
    public var field: String
    /// Offset of the offending value in the datagram or file.
    public var offset: Int
    /// The transaction id of a query that was malformed, so that the node can answer it with error 203
    /// (BEP 5, "Errors"); nil for responses, errors, and queries whose `t` could not be read.
    public var replyTransactionID: [UInt8]?

    public init(_ code: Code, field: String, at offset: Int, replyTransactionID: [UInt8]? = nil) {
        self.code = code
        self.field = field
        self.offset = offset
        self.replyTransactionID = replyTransactionID
    }

    public var description: String {
        let what: String
        switch code {
        case .bencode(let code): return "DHT: " + BencodeError(code, at: offset).description
        case .datagramTooLarge(let length, let limit): what = "datagram of \(length) bytes is over the limit of \(limit)"
        case .missingField: what = "missing field"
        case .wrongType(let expected): what = "expected a \(expected)"
        case .wrongLength(let expected, let actual): what = "\(actual) bytes where \(expected) belong"
        case .notMultiple(let size, let actual): what = "\(actual) bytes is not a multiple of \(size)"
        case .tooLong(let limit): what = "longer than \(limit) bytes"
        case .tooMany(let limit): what = "more than \(limit) entries"
        case .unknownMessageType: what = "unknown message type (y)"
        case .outOfRange: what = "value out of range"
        case .unsupportedVersion(let version): what = "unsupported version \(version)"
        }
        return "DHT: \(what) in \(field.isEmpty ? "the message" : field) at byte \(offset)"
    }
}
