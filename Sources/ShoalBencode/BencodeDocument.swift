/// A decoded bencoded document: the original bytes and a flat array of tokens that point into them.
///
/// As libtorrent's `bdecode`, decoding copies no string: a token records where each value starts and
/// ends in the input, so every value's exact encoded bytes are at hand (the info dictionary's span is
/// what the info-hash is computed over, whatever its key order). Access goes through ``BencodeNode``.
public struct BencodeDocument: Sendable {
    /// A decoded value: its kind, where it lies in the input, and its payload.
    struct Token: Sendable {
        var kind: BencodeKind
        /// Offset of the value's first byte.
        var start: Int
        /// Offset just past the value's last byte.
        var end: Int
        /// Index of the token that follows this value's subtree (its next sibling).
        var next: Int
        /// Integer: the value. String: offset of its first content byte. List: element count.
        /// Dictionary: entry count.
        var payload: Int64
    }

    final class Storage: Sendable {
        let bytes: [UInt8]
        let tokens: [Token]
        init(bytes: [UInt8], tokens: [Token]) {
            self.bytes = bytes
            self.tokens = tokens
        }
    }

    let storage: Storage

    /// Offsets of dictionary keys that were out of order (BEP 3 requires sorted keys; real torrents
    /// sometimes break the rule, so this is reported rather than refused).
    public let unsortedKeyOffsets: [Int]

    /// Offset just past the top-level value. Equal to `bytes.count` unless trailing data was allowed.
    public let end: Int

    /// The whole input, as given.
    public var bytes: [UInt8] { storage.bytes }

    /// The top-level value.
    public var root: BencodeNode { BencodeNode(storage: storage, index: 0) }

    /// Decodes one bencoded value that must fill `bytes` exactly.
    public init(decoding bytes: [UInt8], limits: BencodeLimits = BencodeLimits()) throws(BencodeError) {
        self = try BencodeDecoder(limits: limits).decode(bytes, allowTrailingData: false)
    }

    /// Decodes the bencoded value at the start of `bytes` and leaves what follows it alone
    /// (BEP 9's `ut_metadata` data messages carry raw bytes after their dictionary). ``end`` tells
    /// where the value stopped.
    public static func decodePrefix(
        of bytes: [UInt8], limits: BencodeLimits = BencodeLimits()
    ) throws(BencodeError) -> BencodeDocument {
        try BencodeDecoder(limits: limits).decode(bytes, allowTrailingData: true)
    }

    init(storage: Storage, unsortedKeyOffsets: [Int], end: Int) {
        self.storage = storage
        self.unsortedKeyOffsets = unsortedKeyOffsets
        self.end = end
    }
}
