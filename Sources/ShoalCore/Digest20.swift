import Crypto

/// Twenty bytes: a SHA-1 digest (a v1 info-hash, a piece hash, a peer id or a DHT node id).
public struct Digest20: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The digest, big-endian (as on the wire).
    public let bytes: [UInt8]

    /// A digest from exactly 20 bytes; nil for any other count.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == 20 else { return nil }
        self.bytes = Array(bytes)
    }

    init(_ digest: Insecure.SHA1.Digest) {
        self.bytes = Array(digest)
    }

    /// A digest from 40 hexadecimal digits (either case).
    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex), bytes.count == 20 else { return nil }
        self.bytes = bytes
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: Digest20, rhs: Digest20) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
