/// Base32 text of RFC 4648, section 6: the alphabet `A`–`Z`, `2`–`7`.
///
/// BEP 9 allows a v1 info-hash in a magnet link to be spelled as 32 base32 characters instead of
/// 40 hexadecimal digits ("for compatability with existing links in the wild"). Twenty bytes are
/// exactly 160 bits, so such a hash needs no `=` padding.
public enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Base32 text of `bytes` in the uppercase alphabet of RFC 4648.
    ///
    /// - Parameter padded: whether to end the text with `=` up to a multiple of eight characters,
    ///   as RFC 4648, section 6, asks unless the referring specification says otherwise.
    public static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes, padded: Bool = true) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.underestimatedCount + 4) / 5 * 8)
        var buffer: UInt32 = 0
        var bitCount = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bitCount += 8
            while bitCount >= 5 {
                bitCount -= 5
                output.append(alphabet[Int((buffer >> UInt32(bitCount)) & 0x1F)])
            }
            buffer &= (1 << UInt32(bitCount)) - 1
        }
        if bitCount > 0 {
            output.append(alphabet[Int((buffer << UInt32(5 - bitCount)) & 0x1F)])
        }
        if padded {
            while output.count % 8 != 0 {
                output.append(UInt8(ascii: "="))
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The bytes spelled by base32 text (either case), or nil if it is not canonical base32.
    ///
    /// `=` padding is optional, but if present it must be only at the end and bring the length to
    /// a multiple of eight. Text is rejected when its length (without padding) cannot come from
    /// whole bytes (1, 3 or 6 characters past a multiple of eight) or when the unused low bits of
    /// its last character are not zero (RFC 4648, section 3.5), so every byte string has exactly
    /// one accepted spelling per case and padding choice.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        var length = utf8.count
        while length > 0, utf8[length - 1] == UInt8(ascii: "=") {
            length -= 1
        }
        let paddingCount = utf8.count - length
        if paddingCount > 0 {
            guard utf8.count % 8 == 0, paddingCount <= 6 else { return nil }
        }
        switch length % 8 {
        case 1, 3, 6: return nil
        default: break
        }
        if paddingCount > 0 {
            // Padding, when present, must be exactly what the encoder would have written.
            guard (length + 7) / 8 * 8 == utf8.count else { return nil }
        }
        var output: [UInt8] = []
        output.reserveCapacity(length * 5 / 8)
        var buffer: UInt32 = 0
        var bitCount = 0
        for index in 0..<length {
            guard let value = value(of: utf8[index]) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bitCount += 5
            if bitCount >= 8 {
                bitCount -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bitCount)))
                buffer &= (1 << UInt32(bitCount)) - 1
            }
        }
        // Left-over bits must be zero: anything else spells no byte and would give two texts
        // for the same bytes.
        guard buffer == 0 else { return nil }
        return output
    }

    private static func value(of character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a")
        case UInt8(ascii: "2")...UInt8(ascii: "7"): character - UInt8(ascii: "2") + 26
        default: nil
        }
    }
}
