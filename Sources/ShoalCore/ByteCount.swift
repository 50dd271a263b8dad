/// A size or a rate as people write it: `1048576`, `512k`, `8M`, `1.5GiB`, `2MB/s`. Units are binary
/// (k = 1024, M = 1024², G, T), with or without a trailing `B`, `iB` or `/s`, in any case.
public struct ByteCount: Hashable, Sendable, CustomStringConvertible {
    public var bytes: Int64

    public init(bytes: Int64) {
        self.bytes = bytes
    }

    /// Parses `text`; nil for anything else (negative, not finite, or beyond `Int64`).
    public init?(parsing text: some StringProtocol) {
        var text = Substring(text.lowercased())
        if text.hasSuffix("/s") { text = text.dropLast(2) }
        for suffix in ["ib", "b"] where text.hasSuffix(suffix) && text.count > suffix.count {
            text = text.dropLast(suffix.count)
            break
        }
        var scale = 1.0
        if let last = text.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][last] {
            scale = Double(Int64(1) << (10 * power))
            text = text.dropLast()
        }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(text), value.isFinite, value >= 0, value * scale < 9e18
        else { return nil }
        bytes = Int64((value * scale).rounded())
    }

    /// The shortest exact form the parser reads back: `32M`, `1536k`, `100`.
    public var description: String {
        var value = bytes
        var unit = 0
        while unit < 4, value != 0, value % 1024 == 0 {
            value /= 1024
            unit += 1
        }
        return "\(value)" + ["", "k", "M", "G", "T"][unit]
    }
}
