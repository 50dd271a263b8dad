import ShoalBencode

/// Bounds the KRPC decoder enforces, so that a hostile datagram costs a bounded, small amount of work.
public struct KRPCLimits: Hashable, Sendable {
    /// The longest datagram read at all. BEP 32 ("Maximum packet size") asks senders to stay within 1024 bytes
    /// and receivers to take more, for robustness; Ethernet's MTU bounds what arrives in one piece.
    public var maxDatagramLength: Int
    /// The longest transaction id (`t`); two to four bytes are usual.
    public var maxTransactionIDLength: Int
    /// The longest client version (`v`); four bytes are usual (BEP 5).
    public var maxVersionLength: Int
    /// The longest write token; libtorrent sends 4 bytes, others up to 20.
    public var maxTokenLength: Int
    /// The most peers in one `values` list.
    public var maxValues: Int
    /// The longest error text or unknown method name kept.
    public var maxTextLength: Int
    /// Bencode limits for one datagram.
    public var bencode: BencodeLimits

    public init(
        maxDatagramLength: Int = 1500, maxTransactionIDLength: Int = 16, maxVersionLength: Int = 16,
        maxTokenLength: Int = 64, maxValues: Int = 256, maxTextLength: Int = 256
    ) {
        self.maxDatagramLength = maxDatagramLength
        self.maxTransactionIDLength = maxTransactionIDLength
        self.maxVersionLength = maxVersionLength
        self.maxTokenLength = maxTokenLength
        self.maxValues = maxValues
        self.maxTextLength = maxTextLength
        self.bencode = BencodeLimits(maxDepth: 8, maxItems: 1024, maxStringLength: maxDatagramLength, maxIntegerDigits: 19)
    }

    public static let standard = KRPCLimits()
}
