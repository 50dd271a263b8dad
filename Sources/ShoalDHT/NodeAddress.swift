import ShoalCore

/// Where a DHT node (or a peer, in the peer store) listens: an IPv4 or IPv6 address and a UDP port.
///
/// Kept inline in 19 bytes (no heap storage, unlike ``PeerAddress``, whose IPv6 bytes are an array), because
/// every routing table entry and every stored peer holds one. Convertible to and from ``PeerAddress``.
public struct NodeAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The two DHTs (BEP 32): one per address family, with their own routing tables.
    public enum Family: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
        case ipv4
        case ipv6

        /// Bytes of an address (4 or 16).
        public var addressLength: Int { self == .ipv4 ? 4 : 16 }
        /// Bytes of compact address-and-port (BEP 5 "Contact Encoding": 6; BEP 32: 18).
        public var compactPeerLength: Int { addressLength + 2 }
        /// Bytes of compact node info (26 or 38).
        public var compactNodeLength: Int { NodeID.byteCount + compactPeerLength }
        public var description: String { self == .ipv4 ? "IPv4" : "IPv6" }
    }

    /// The address without its port: what rate limits, tokens and BEP 42 look at.
    public struct Host: Hashable, Comparable, Sendable {
        /// IPv6 bytes 0-7 (zero for IPv4).
        public var high: UInt64
        /// IPv6 bytes 8-15, or the IPv4 address in the low 32 bits.
        public var low: UInt64
        public var family: Family

        public init(high: UInt64, low: UInt64, family: Family) {
            self.high = high
            self.low = low
            self.family = family
        }

        public init(ipv4: UInt32) { self.init(high: 0, low: UInt64(ipv4), family: .ipv4) }

        /// The address bytes, network order (4 or 16).
        public var bytes: [UInt8] {
            var output: [UInt8] = []
            output.reserveCapacity(family.addressLength)
            append(to: &output)
            return output
        }

        public func append(to output: inout [UInt8]) {
            if family == .ipv4 {
                for shift in stride(from: 24, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
            } else {
                for shift in stride(from: 56, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
                for shift in stride(from: 56, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
            }
        }

        /// 127.0.0.0/8 or ::1: nodes on this machine (tests, several nodes on one host).
        public var isLoopback: Bool {
            family == .ipv4 ? low >> 24 == 127 : (high == 0 && low == 1)
        }

        /// Addresses no BEP 42 id can be checked against, because they are not unique on the Internet: loopback,
        /// private (RFC 1918), link-local, shared (RFC 6598), and IPv6 unique-local and link-local.
        public var isLocal: Bool {
            if isLoopback { return true }
            if family == .ipv4 {
                let a = low >> 24 & 0xFF
                let b = low >> 16 & 0xFF
                return a == 10 || (a == 172 && b & 0xF0 == 16) || (a == 192 && b == 168) || (a == 169 && b == 254)
                    || (a == 100 && b & 0xC0 == 64) || a == 0
            }
            let first16 = high >> 48
            return first16 & 0xFE00 == 0xFC00 || first16 & 0xFFC0 == 0xFE80 || (high == 0 && low == 0)
        }

        public static func < (lhs: Host, rhs: Host) -> Bool {
            (lhs.family.rawValue, lhs.high, lhs.low) < (rhs.family.rawValue, rhs.high, rhs.low)
        }
    }

    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var family: Family { host.family }

    /// The node's address as a ``PeerAddress`` (for printing, sockets and the torrent engine).
    public var peerAddress: PeerAddress {
        switch host.family {
        case .ipv4: PeerAddress(host: .ipv4(UInt32(truncatingIfNeeded: host.low)), port: port)
        case .ipv6: PeerAddress(host: .ipv6(host.bytes), port: port)
        }
    }

    public init(_ address: PeerAddress) {
        switch address.host {
        case .ipv4(let value):
            self.init(host: Host(ipv4: value), port: address.port)
        case .ipv6(let bytes):
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, byte) in bytes.prefix(16).enumerated() {
                if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self.init(host: Host(high: high, low: low, family: .ipv6), port: address.port)
        }
    }

    /// Parses `1.2.3.4:6881` or `[::1]:6881` (as ``PeerAddress`` does).
    public init?(_ text: some StringProtocol) {
        guard let address = PeerAddress(text) else { return nil }
        self.init(address)
    }

    /// Compact address-and-port: 6 bytes (IPv4, BEP 5) or 18 (IPv6, BEP 32); nil for other lengths.
    public init?<Bytes: Collection<UInt8>>(compact bytes: Bytes) {
        let count = bytes.count
        guard count == 6 || count == 18 else { return nil }
        var iterator = bytes.makeIterator()
        var high: UInt64 = 0
        var low: UInt64 = 0
        if count == 18 {
            for _ in 0..<8 { high = high << 8 | UInt64(iterator.next()!) }
            for _ in 0..<8 { low = low << 8 | UInt64(iterator.next()!) }
        } else {
            for _ in 0..<4 { low = low << 8 | UInt64(iterator.next()!) }
        }
        let port = UInt16(iterator.next()!) << 8 | UInt16(iterator.next()!)
        self.init(host: Host(high: high, low: low, family: count == 18 ? .ipv6 : .ipv4), port: port)
    }

    /// Appends the compact form (6 or 18 bytes).
    public func appendCompact(to output: inout [UInt8]) {
        host.append(to: &output)
        output.append(UInt8(port >> 8))
        output.append(UInt8(port & 0xFF))
    }

    /// The compact form (6 or 18 bytes).
    public var compact: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(family.compactPeerLength)
        appendCompact(to: &output)
        return output
    }

    public var description: String { peerAddress.description }

    public static func < (lhs: NodeAddress, rhs: NodeAddress) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }
}
