/// Bounds the peer wire decoder and state machine enforce, so that a hostile peer costs bounded
/// memory: every limit is checked from the 4-byte length prefix (and the id byte after it),
/// *before* the message body is buffered.
///
/// The defaults accept everything real clients send:
/// - blocks: 16 KiB. BEP 3 ("request"): "All current implementations use 2^14 (16 kiB), and close
///   connections which request an amount greater than that." Shoal never requests more, so a
///   larger `piece` can only be unrequested data, and a larger `request`, `cancel` or
///   `reject request` is refused.
/// - bitfield while the piece count is unknown (a magnet link before its metadata): 1 MiB, that is
///   8,388,608 pieces, far above any real torrent. Once the count is known the bitfield must have
///   exactly `ceil(pieceCount / 8)` bytes.
/// - extended (BEP 10) and unknown messages: 1 MiB, libtorrent's cap on any message (it closes
///   the connection with `packet_too_large` above it). The largest real extension messages are
///   BEP 9 `ut_metadata` data (16 KiB of metadata and a small dictionary) and BEP 11 `ut_pex`
///   (at most 50 added and 50 dropped peers); the extension handshake is a few hundred bytes.
///   So a peer's partial message never holds more than about 1 MiB of our memory.
public struct WireLimits: Hashable, Sendable {
    /// The longest block a `request`, `cancel` or `reject request` may name, and the longest block
    /// a `piece` may carry.
    public var maxBlockLength: UInt32
    /// The longest bitfield, in bytes, accepted while the piece count is unknown.
    public var maxBitfieldBytes: Int
    /// The longest BEP 10 payload: the bytes after the extended message id.
    public var maxExtendedPayload: Int
    /// The longest payload of a message with an id Shoal does not know (BEP 3: ignored).
    public var maxUnknownPayload: Int

    public init(
        maxBlockLength: UInt32 = BlockRequest.standardLength,
        maxBitfieldBytes: Int = 1 << 20,
        maxExtendedPayload: Int = 1 << 20,
        maxUnknownPayload: Int = 1 << 20
    ) {
        self.maxBlockLength = maxBlockLength
        self.maxBitfieldBytes = maxBitfieldBytes
        self.maxExtendedPayload = maxExtendedPayload
        self.maxUnknownPayload = maxUnknownPayload
    }
}
