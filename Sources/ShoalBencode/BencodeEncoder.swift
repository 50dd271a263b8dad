/// Writes bencode in canonical form (BEP 3): dictionary keys sorted as raw byte strings,
/// integers without leading zeros.
public enum BencodeEncoder {
    /// The canonical encoding of `value`.
    public static func encode(_ value: BencodeValue) -> [UInt8] {
        var output: [UInt8] = []
        append(value, to: &output)
        return output
    }

    /// Appends the canonical encoding of `value` to `output`.
    public static func append(_ value: BencodeValue, to output: inout [UInt8]) {
        switch value {
        case .integer(let integer):
            output.append(UInt8(ascii: "i"))
            appendDecimal(integer, to: &output)
            output.append(UInt8(ascii: "e"))
        case .string(let bytes):
            appendString(bytes, to: &output)
        case .list(let elements):
            output.append(UInt8(ascii: "l"))
            for element in elements { append(element, to: &output) }
            output.append(UInt8(ascii: "e"))
        case .dictionary(let dictionary):
            output.append(UInt8(ascii: "d"))
            for key in dictionary.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                appendString(key, to: &output)
                append(dictionary[key]!, to: &output)
            }
            output.append(UInt8(ascii: "e"))
        }
    }

    /// Appends `<length>:<bytes>`.
    public static func appendString<Bytes: Collection<UInt8>>(_ bytes: Bytes, to output: inout [UInt8]) {
        appendDecimal(Int64(bytes.count), to: &output)
        output.append(UInt8(ascii: ":"))
        output.append(contentsOf: bytes)
    }

    private static func appendDecimal(_ value: Int64, to output: inout [UInt8]) {
        output.append(contentsOf: String(value).utf8)
    }
}
