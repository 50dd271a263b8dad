/// The eight reserved bytes of the BEP 3 handshake, as a set of capability bits.
///
/// The raw value holds the bytes big-endian (byte 0 is the most significant), so that a bit named
/// "byte 5, 0x10" in a BEP is `0x10 << (8 * (7 - 5))`. Bits Shoal does not know are kept, so a
/// handshake re-encodes byte for byte.
public struct ReservedBits: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// BEP 10 extension protocol: `reserved[5] & 0x10` (bit 20 from the right).
    public static let extensionProtocol = ReservedBits(rawValue: 0x10 << 16)
    /// BEP 6 fast extension: `reserved[7] & 0x04`.
    public static let fastExtension = ReservedBits(rawValue: 0x04)
    /// BEP 5 DHT (the peer accepts `port` messages): `reserved[7] & 0x01`.
    public static let dht = ReservedBits(rawValue: 0x01)

    /// The bits from their eight wire bytes; nil for any other count.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == 8 else { return nil }
        rawValue = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The eight wire bytes.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: rawValue >> (8 * (7 - $0))) }
    }

    /// The known capabilities, then any other bits in hexadecimal.
    public var description: String {
        var names: [String] = []
        if contains(.extensionProtocol) { names.append("extension protocol") }
        if contains(.fastExtension) { names.append("fast extension") }
        if contains(.dht) { names.append("dht") }
        let other = subtracting([.extensionProtocol, .fastExtension, .dht]).rawValue
        if other != 0 { names.append("0x" + String(other, radix: 16)) }
        return "[" + names.joined(separator: ", ") + "]"
    }
}
