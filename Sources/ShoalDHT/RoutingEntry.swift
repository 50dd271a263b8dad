import ShoalCore

/// A node in a routing table: its contact, when it last showed it is alive, and how many of our queries in a
/// row it failed to answer (BEP 5, "Routing Table").
///
/// Only nodes that answered one of our queries are entered, so every entry was good once. 48 bytes inline.
public struct RoutingEntry: Hashable, Sendable {
    public var id: NodeID
    /// Queries in a row that timed out; reset by any answer.
    public var failures: UInt8
    /// Whether the id conforms to BEP 42 for the address (never true for local addresses).
    public var verified: Bool
    public var address: NodeAddress
    /// The last answer to our query, or the last query from this node (it answered us before).
    public var lastSeen: Instant

    public init(id: NodeID, address: NodeAddress, verified: Bool, lastSeen: Instant) {
        self.id = id
        self.failures = 0
        self.verified = verified
        self.address = address
        self.lastSeen = lastSeen
    }

    public var info: NodeInfo { NodeInfo(id: id, address: address) }

    /// BEP 5's three states.
    public enum Status: Hashable, Sendable {
        /// Answered within the last 15 minutes (or answered once and queried us within them).
        case good
        /// Silent for 15 minutes, or failed one query.
        case questionable
        /// Failed several queries in a row.
        case bad
    }

    public func status(now: Instant, goodFor: Interval, maxFailures: Int) -> Status {
        if Int(failures) >= maxFailures { return .bad }
        if failures == 0 && now - lastSeen < goodFor { return .good }
        return .questionable
    }
}
