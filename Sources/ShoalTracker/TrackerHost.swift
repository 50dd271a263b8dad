import ShoalCore

/// A peer's IP address as the tracker server keeps it: inline words, no heap (``PeerAddress`` keeps
/// IPv6 bytes in an array). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack socket sees
/// an IPv4 client) is an IPv4 host.
public enum TrackerHost: Hashable, Sendable, CustomStringConvertible {
    case ipv4(UInt32)
    case ipv6(high: UInt64, low: UInt64)

    public init(_ host: PeerAddress.Host) {
        switch host {
        case .ipv4(let value):
            self = .ipv4(value)
        case .ipv6(let bytes):
            var high: UInt64 = 0
            var low: UInt64 = 0
            for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
            for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
            self.init(ipv6High: high, low: low)
        }
    }

    /// An IPv6 address from its two halves; IPv4-mapped ones become IPv4.
    public init(ipv6High high: UInt64, low: UInt64) {
        if high == 0 && low >> 32 == 0xFFFF {
            self = .ipv4(UInt32(truncatingIfNeeded: low))
        } else {
            self = .ipv6(high: high, low: low)
        }
    }

    public var isIPv6: Bool {
        if case .ipv6 = self { return true }
        return false
    }

    /// The host with a port, as the rest of Shoal handles addresses.
    public func peerAddress(port: UInt16) -> PeerAddress {
        switch self {
        case .ipv4(let value):
            return PeerAddress(host: .ipv4(value), port: port)
        case .ipv6(let high, let low):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16)
            bytes.appendBigEndian(high)
            bytes.appendBigEndian(low)
            return PeerAddress(host: .ipv6(bytes), port: port)
        }
    }

    /// Three words for keyed hashing (the family is in the third, so an IPv4 address and an IPv6 one
    /// with the same bits differ).
    @inline(__always)
    var hashWords: (UInt64, UInt64, UInt64) {
        switch self {
        case .ipv4(let value): (UInt64(value), 0, 4)
        case .ipv6(let high, let low): (high, low, 6)
        }
    }

    public var description: String { peerAddress(port: 1).hostText }
}
