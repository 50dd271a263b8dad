/// Text from a torrent or a peer made safe to print: C0 and C1 control characters (which can drive a
/// terminal) are shown as `\u{1b}`-style escapes.
public enum PrintableText {
    /// `text` with its control characters escaped; longer than `limit` scalars, cut and marked with `…`.
    public static func escaped(_ text: String, limit: Int = .max) -> String {
        var output = ""
        for scalar in text.unicodeScalars.prefix(limit) {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                output += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                output.unicodeScalars.append(scalar)
            }
        }
        return text.unicodeScalars.count > limit ? output + "…" : output
    }
}
