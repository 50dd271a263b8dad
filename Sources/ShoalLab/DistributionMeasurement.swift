/// What `shoal lab distribution` found for one swarm size: the lecture's two bounds and the distribution
/// times measured, one per run (the time at which the last of the `peers` leechers had the whole file,
/// counted from the start). An empty list means that kind was not measured.
public struct DistributionMeasurement: Sendable, Hashable {
    /// N, the number of peers that download.
    public var peers: Int
    /// d_cs, in seconds.
    public var clientServerBound: Double
    /// d_P2P, in seconds.
    public var peerToPeerBound: Double
    /// Simulated with the real engine, peers not uploading (the seed serves everyone).
    public var clientServer: [Double]
    /// Simulated with the real engine, peers trading (rarest-first, choking, pipelining).
    public var peerToPeer: [Double]
    /// Real Shoal processes on loopback with upload caps, peers trading (`--real`).
    public var realPeerToPeer: [Double]

    public init(
        peers: Int, clientServerBound: Double, peerToPeerBound: Double, clientServer: [Double] = [],
        peerToPeer: [Double] = [], realPeerToPeer: [Double] = []
    ) {
        self.peers = peers
        self.clientServerBound = clientServerBound
        self.peerToPeerBound = peerToPeerBound
        self.clientServer = clientServer
        self.peerToPeer = peerToPeer
        self.realPeerToPeer = realPeerToPeer
    }

    /// The mean of a list of times (nil when empty).
    public static func mean(_ times: [Double]) -> Double? {
        times.isEmpty ? nil : times.reduce(0, +) / Double(times.count)
    }
}
