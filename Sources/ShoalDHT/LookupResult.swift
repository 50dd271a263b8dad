import ShoalCore

/// What a finished lookup found.
public struct LookupResult: Hashable, Sendable {
    public var id: LookupID
    public var kind: Lookup.Kind
    public var target: NodeID
    public var family: NodeAddress.Family
    /// The k closest nodes that answered, closest first.
    public var closest: [NodeInfo]
    /// Peers found (get_peers), in the order they came.
    public var peers: [PeerAddress]
    public var queries: Int
    public var responses: Int
    public var timeouts: Int
    /// Round trips on the path to the closest node that answered (1: it was in our table).
    public var hops: Int
    /// Nodes that acknowledged our announce_peer.
    public var announced: Int
    public var duration: Interval
}
