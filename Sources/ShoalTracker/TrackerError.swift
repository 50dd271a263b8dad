import ShoalBencode

/// Why a tracker exchange failed: a URL that cannot be announced to, an answer that cannot be read, a
/// refusal by the tracker, or a request the tracker server refuses. Says what was wrong and where
/// (the field, the byte offset in the packet or document).
public struct TrackerError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The announce URL cannot be used; the text says why.
        case invalidURL(String)
        /// The answer is not bencode (BEP 3 tracker responses are a bencoded dictionary).
        case bencode(BencodeError)
        /// The answer's top level is not a dictionary.
        case notADictionary
        /// A field the answer must have is missing.
        case missingField(String)
        /// A field has the wrong bencode type, or a value out of its range.
        case invalidField(String, reason: String)
        /// The tracker refused (`failure reason` of BEP 3, an error packet of BEP 15); `retryIn` is BEP 31's
        /// `retry in` when given (nil: not said; `.max`: never).
        case refused(String, retryIn: Int64?)
        /// A UDP packet shorter than its kind needs (BEP 15).
        case tooShort(needed: Int, got: Int)
        /// A UDP packet whose action is unknown or not the one expected.
        case unexpectedAction(UInt32)
        /// A UDP answer for another transaction.
        case transactionMismatch
        /// A UDP connect request without BEP 15's protocol id.
        case badProtocolID
        /// A request to the tracker server that it refuses (missing or malformed parameter, port 0, ...).
        case badRequest(String)
        /// The state file cannot be read back.
        case invalidSnapshot(String)
    }

    public var code: Code
    /// Offset of the byte at fault in the packet, query or file, when known.
    public var offset: Int?

    public init(_ code: Code, at offset: Int? = nil) {
        self.code = code
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch code {
        case .invalidURL(let reason): what = "invalid tracker URL: \(reason)"
        case .bencode(let error): what = "the answer is not bencode: \(error)"
        case .notADictionary: what = "the answer is not a bencoded dictionary"
        case .missingField(let field): what = "the answer has no \"\(field)\""
        case .invalidField(let field, let reason): what = "\"\(field)\" \(reason)"
        case .refused(let reason, let retryIn):
            what = "the tracker refused: \(reason)" + (retryIn.map { $0 == .max ? " (retry: never)" : " (retry in \($0) min)" } ?? "")
        case .tooShort(let needed, let got): what = "packet of \(got) bytes, at least \(needed) needed"
        case .unexpectedAction(let action): what = "unexpected action \(action)"
        case .transactionMismatch: what = "answer for another transaction"
        case .badProtocolID: what = "connect request without the protocol id 0x41727101980"
        case .badRequest(let reason): what = reason
        case .invalidSnapshot(let reason): what = "tracker state: \(reason)"
        }
        return offset.map { "\(what) (at byte \($0))" } ?? what
    }
}
