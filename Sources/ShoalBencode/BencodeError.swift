/// Why bencoded input was refused, and at which byte.
///
/// Every error carries the offset of the byte where decoding stopped, so that a user (or a fuzzer
/// triage) can point at the exact place in a file or a packet.
public struct BencodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public enum Code: Hashable, Sendable {
        /// The input ended in the middle of a value.
        case truncated
        /// A byte that cannot start or continue a value here.
        case unexpectedByte(UInt8)
        /// An integer (or a string length) written with a leading zero, which BEP 3 forbids.
        case leadingZero
        /// `i-0e`, which BEP 3 forbids.
        case negativeZero
        /// `ie` or `i-e`.
        case emptyInteger
        /// An integer with more digits than the limit, or outside the 64-bit range.
        case integerTooLarge
        /// A string whose declared length is over the limit.
        case stringTooLong(declared: Int, limit: Int)
        /// A dictionary key that is not a byte string.
        case nonStringKey
        /// The same key twice in one dictionary (ambiguous, so refused).
        case duplicateKey
        /// A dictionary that ended after a key, without its value.
        case missingValue
        /// Lists and dictionaries nested deeper than the limit.
        case tooDeep(limit: Int)
        /// More values in the document than the limit.
        case tooManyItems(limit: Int)
        /// Bytes after the top-level value.
        case trailingData
        /// Nothing to decode.
        case empty
    }

    public var code: Code
    /// Offset of the offending byte from the start of the input.
    public var offset: Int

    public init(_ code: Code, at offset: Int) {
        self.code = code
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch code {
        case .truncated: what = "input ends in the middle of a value"
        case .unexpectedByte(let byte): what = "unexpected byte \(Self.describe(byte))"
        case .leadingZero: what = "number with a leading zero"
        case .negativeZero: what = "negative zero (i-0e)"
        case .emptyInteger: what = "integer without digits"
        case .integerTooLarge: what = "integer too large"
        case .stringTooLong(let declared, let limit):
            what = "string of \(declared) bytes is over the limit of \(limit)"
        case .nonStringKey: what = "dictionary key is not a string"
        case .duplicateKey: what = "duplicate dictionary key"
        case .missingValue: what = "dictionary key without a value"
        case .tooDeep(let limit): what = "nesting deeper than \(limit) levels"
        case .tooManyItems(let limit): what = "more than \(limit) values"
        case .trailingData: what = "data after the end of the top-level value"
        case .empty: what = "empty input"
        }
        return "bencode: \(what) at byte \(offset)"
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F {
            return "'\(Character(UnicodeScalar(byte)))'"
        }
        let hex = String(byte, radix: 16)
        return "0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}
