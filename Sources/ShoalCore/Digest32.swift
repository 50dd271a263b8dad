import Crypto

/// Thirty-two bytes: a SHA-256 digest (a v2 info-hash, a merkle root of BEP 52).
public struct Digest32: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The digest, big-endian (as on the wire).
    public let bytes: [UInt8]

    /// A digest from exactly 32 bytes; nil for any other count.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    init(_ digest: SHA256.Digest) {
        self.bytes = Array(digest)
    }

    /// A digest from 64 hexadecimal digits (either case).
    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: Digest32, rhs: Digest32) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
