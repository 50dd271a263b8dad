import Crypto

/// A torrent's identity: SHA-1 of the bencoded info dictionary (v1, BEP 3) or SHA-256 of it
/// (v2, BEP 52). A hybrid torrent has both, computed over the same bytes.
public enum InfoHash: Hashable, Sendable, CustomStringConvertible {
    case v1(Digest20)
    case v2(Digest32)

    /// SHA-1 over the exact bytes of an info dictionary.
    public static func v1(ofInfo bytes: ArraySlice<UInt8>) -> InfoHash {
        var hasher = Insecure.SHA1()
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return .v1(Digest20(hasher.finalize()))
    }

    /// SHA-256 over the exact bytes of an info dictionary.
    public static func v2(ofInfo bytes: ArraySlice<UInt8>) -> InfoHash {
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return .v2(Digest32(hasher.finalize()))
    }

    /// The digest's bytes (20 for v1, 32 for v2).
    public var bytes: [UInt8] {
        switch self {
        case .v1(let digest): digest.bytes
        case .v2(let digest): digest.bytes
        }
    }

    /// The 20 bytes that go on the wire and to trackers and the DHT: the v1 hash, or the v2 hash
    /// truncated to 20 bytes (BEP 52).
    public var truncated: Digest20 {
        switch self {
        case .v1(let digest): digest
        case .v2(let digest): Digest20(bytes: Array(digest.bytes.prefix(20)))!
        }
    }

    /// Lowercase hexadecimal.
    public var hex: String { Hex.encode(bytes) }

    public var description: String { hex }
}
