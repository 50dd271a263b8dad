import ShoalCore

/// What the choker needs to know about one connected peer at a rechoke.
public struct PeerStats: Hashable, Sendable {
    public var key: PeerKey
    /// The peer is interested in us: it wants what we have.
    public var isInterested: Bool
    /// We are interested in the peer; a peer that sends us nothing for long while we are is snubbing us.
    public var amInterested: Bool
    /// Bytes per second the peer sends us (payload), recently.
    public var downloadRate: Double
    /// Bytes per second we send the peer (payload), recently.
    public var uploadRate: Double
    /// When the connection was established.
    public var connectedSince: Instant
    /// When the peer last sent us a block; nil if it never has.
    public var lastBlockReceived: Instant?
    /// When we last unchoked the peer, if it is unchoked now; nil while we choke it.
    public var unchokedSince: Instant?
    /// Payload bytes we have sent the peer since it connected.
    public var bytesSent: Int64
    /// Payload bytes the peer has sent us since it connected.
    public var bytesReceived: Int64

    public init(
        key: PeerKey, isInterested: Bool, amInterested: Bool = false, downloadRate: Double = 0,
        uploadRate: Double = 0, connectedSince: Instant, lastBlockReceived: Instant? = nil,
        unchokedSince: Instant? = nil, bytesSent: Int64 = 0, bytesReceived: Int64 = 0
    ) {
        self.key = key
        self.isInterested = isInterested
        self.amInterested = amInterested
        self.downloadRate = downloadRate
        self.uploadRate = uploadRate
        self.connectedSince = connectedSince
        self.lastBlockReceived = lastBlockReceived
        self.unchokedSince = unchokedSince
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
    }

    /// What the peer gave us beyond what we gave it (negative: we gave more).
    public var balance: Int64 { Saturating.subtract(bytesReceived, bytesSent) }

    /// Whether we choke the peer now.
    public var isChoked: Bool { unchokedSince == nil }
}
