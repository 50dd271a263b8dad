/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum BEP 42 ties node ids to addresses with.
///
/// A table-driven software implementation: it runs over 8 bytes per node id check, so speed does not matter.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1 }
        return value
    }

    /// The CRC-32C of `bytes` (initial value and final XOR 0xFFFFFFFF, as RFC 3720 and SSE 4.2 compute it).
    public static func checksum<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
