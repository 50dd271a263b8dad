/// BEP 42 ("DHT Security extension", "Node ID restriction"): a node id's first 21 bits are tied to the node's
/// external address by CRC-32C, so that nobody can place many nodes next to an info-hash of their choosing.
extension NodeID {
    /// The CRC-32C that BEP 42 derives from an address and `r` (0-7): the address's first 4 (IPv4) or 8 (IPv6)
    /// bytes masked, `r` in the top three bits.
    static func securePrefix(for host: NodeAddress.Host, r: UInt8) -> UInt32 {
        let v4Mask: [UInt8] = [0x03, 0x0F, 0x3F, 0xFF]
        let v6Mask: [UInt8] = [0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF]
        let mask = host.family == .ipv4 ? v4Mask : v6Mask
        var bytes = Array(host.bytes.prefix(mask.count))
        for index in bytes.indices { bytes[index] &= mask[index] }
        bytes[0] |= (r & 0x07) << 5
        return CRC32C.checksum(bytes)
    }

    /// A random id that conforms to BEP 42 for the external address `host`: the first 21 bits from the CRC,
    /// the last byte carrying the random `r`, everything else random.
    public static func secure(for host: NodeAddress.Host, using random: inout some RandomNumberGenerator) -> NodeID {
        let last = UInt8(truncatingIfNeeded: random.next())
        let crc = securePrefix(for: host, r: last & 0x07)
        var bytes = NodeID.random(using: &random).bytes
        bytes[0] = UInt8(truncatingIfNeeded: crc >> 24)
        bytes[1] = UInt8(truncatingIfNeeded: crc >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: crc >> 8) & 0xF8 | bytes[2] & 0x07
        bytes[19] = last
        return NodeID(bytes: bytes)!
    }

    /// Whether this id conforms to BEP 42 for `host` (its first 21 bits match the CRC for the `r` in its last
    /// byte). Local addresses (loopback, private networks) are never verified: they are not unique.
    public func isSecure(for host: NodeAddress.Host) -> Bool {
        let r = UInt8(truncatingIfNeeded: low) & 0x07
        let crc = Self.securePrefix(for: host, r: r)
        return UInt32(truncatingIfNeeded: high >> 43) == crc >> 11
    }
}
