import ShoalSwarm

/// How to make one simulated peer.
public struct SimPeerSpec {
    public var link: SimLink
    /// Starts with every piece (a seed).
    public var isSeed: Bool
    /// Leaves the swarm (closes every connection) as soon as it has every wanted piece.
    public var leavesWhenFinished: Bool
    /// Serves altered bytes for every block it uploads.
    public var corruptsUploads: Bool
    /// Is listed by the swarm's directory, so that others learn its address, and learns theirs from it.
    public var announces: Bool
    /// Dials these peers (by ``SimPeerID``) when it joins, besides what the directory gives.
    public var knownPeers: [SimPeerID]
    /// Changes to the engine's configuration (choker slots, connection limits, picker...).
    public var configure: (inout TorrentStateMachine.Configuration) -> Void

    public init(
        link: SimLink, isSeed: Bool = false, leavesWhenFinished: Bool = false, corruptsUploads: Bool = false,
        announces: Bool = true, knownPeers: [SimPeerID] = [],
        configure: @escaping (inout TorrentStateMachine.Configuration) -> Void = { _ in }
    ) {
        self.link = link
        self.isSeed = isSeed
        self.leavesWhenFinished = leavesWhenFinished
        self.corruptsUploads = corruptsUploads
        self.announces = announces
        self.knownPeers = knownPeers
        self.configure = configure
    }
}

/// A simulated peer, by the order it was added (from 0).
public struct SimPeerID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (lhs: SimPeerID, rhs: SimPeerID) -> Bool { lhs.index < rhs.index }
    public var description: String { "peer\(index)" }
}
