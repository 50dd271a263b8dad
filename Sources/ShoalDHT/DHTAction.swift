import ShoalCore

/// What a ``DHTNode`` asks its runtime to do.
public enum DHTAction: Hashable, Sendable {
    /// Send one UDP datagram.
    case send([UInt8], to: NodeAddress)
    /// Call ``DHTNode/tick(now:)`` at (or soon after) this instant; replaces any earlier request.
    case schedule(at: Instant)
    /// A get_peers lookup found peers it had not reported before.
    case peersFound(LookupID, infoHash: NodeID, [PeerAddress])
    /// A lookup ended (converged, or ran out of queries or time); announces included.
    case lookupFinished(LookupResult)
    /// The node took a new id (BEP 42: one that conforms to its external address); save it.
    case nodeIDChanged(NodeID)
}
