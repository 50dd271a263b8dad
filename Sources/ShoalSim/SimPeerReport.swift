import ShoalCore

/// What happened to one simulated peer.
public struct SimPeerReport: Sendable, Hashable {
    public var joinedAt: Instant?
    /// When every wanted piece was verified (the engine's `completed`).
    public var finishedAt: Instant?
    public var leftAt: Instant?
    /// Bytes its link sent and received (messages and blocks, as on the wire).
    public var bytesSent: Int64 = 0
    public var bytesReceived: Int64 = 0
    /// Addresses its engine banned.
    public var bans: [PeerAddress] = []
    public var piecesVerified = 0
    public var isOnline = false

    public init() {}
}
