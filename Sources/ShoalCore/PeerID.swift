/// A peer's 20-byte id. Shoal's own follows BEP 20's Azureus style: `-SH0100-` and twelve random bytes.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// The id from exactly 20 bytes; nil otherwise.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == 20 else { return nil }
        self.bytes = Array(bytes)
    }

    /// The BEP 20 prefix of Shoal's ids: client `SH`, version 0.1.0.0.
    public static let shoalPrefix = Array("-SH0100-".utf8)

    /// A new id for this client: the prefix, then twelve random bytes drawn from `random`
    /// (printable, as most clients make them, so that logs and trackers show them plainly).
    public static func shoal<Random: RandomNumberGenerator>(using random: inout Random) -> PeerID {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_".utf8)
        var bytes = shoalPrefix
        for _ in 0..<12 { bytes.append(alphabet[Int(random.next() % UInt64(alphabet.count))]) }
        return PeerID(bytes: bytes)!
    }

    /// The client named by a BEP 20 Azureus-style prefix (`-XX1234-`), e.g. `SH 0100`; nil otherwise.
    public var azureusStyleClient: String? {
        guard bytes[0] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return nil }
        let middle = bytes[1..<7]
        guard middle.allSatisfy({ $0 >= 0x21 && $0 < 0x7F }) else { return nil }
        let text = String(decoding: middle, as: UTF8.self)
        return "\(text.prefix(2)) \(text.dropFirst(2))"
    }

    /// Printable characters as they are, others as `%XX` (as trackers show ids).
    public var description: String {
        var output = ""
        for byte in bytes {
            if byte >= 0x21 && byte < 0x7F && byte != UInt8(ascii: "%") {
                output.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                let hex = Hex.encode([byte])
                output += "%" + hex
            }
        }
        return output
    }
}
