/// Bounds that a decoder enforces, so that hostile input costs bounded memory and time.
///
/// The defaults accept every real .torrent file (the largest public ones are a few tens of MiB,
/// with `pieces` strings of a few MiB) while refusing absurd nesting and counts.
public struct BencodeLimits: Hashable, Sendable {
    /// The deepest nesting of lists and dictionaries.
    public var maxDepth: Int
    /// The most values (integers, strings, lists, dictionaries) in one document.
    public var maxItems: Int
    /// The longest byte string.
    public var maxStringLength: Int
    /// The most digits in an integer (19 digits fit a signed 64-bit integer).
    public var maxIntegerDigits: Int

    public init(
        maxDepth: Int = 100,
        maxItems: Int = 2_000_000,
        maxStringLength: Int = 64 << 20,
        maxIntegerDigits: Int = 19
    ) {
        self.maxDepth = maxDepth
        self.maxItems = maxItems
        self.maxStringLength = maxStringLength
        self.maxIntegerDigits = maxIntegerDigits
    }

    /// Limits for small network messages (KRPC packets, extension handshakes, tracker replies).
    public static let message = BencodeLimits(
        maxDepth: 32, maxItems: 100_000, maxStringLength: 1 << 20, maxIntegerDigits: 19)
}
