import ShoalCore

/// A node in a routing table: its contact, when it last showed it is alive, and how many of our queries in a
/// row it failed to answer (BEP 5, "Routing Table").
///
/// Only nodes that answered one of our queries are entered, so every entry was good once. 48 bytes apart in
/// an array (the last-seen time is kept in whole seconds, which the 15-minute rules do not miss).
public struct RoutingEntry: Hashable, Sendable {
    public var id: NodeID
    private var lastSeenSeconds: Int32
    public var address: NodeAddress
    /// Queries in a row that timed out; reset by any answer.
    public var failures: UInt8
    /// Whether the id conforms to BEP 42 for the address (never true for local addresses).
    public var verified: Bool

    public init(id: NodeID, address: NodeAddress, verified: Bool, lastSeen: Instant) {
        self.id = id
        self.lastSeenSeconds = 0
        self.address = address
        self.failures = 0
        self.verified = verified
        self.lastSeen = lastSeen
    }

    /// The last answer to our query, or the last query from this node (it answered us before); whole seconds.
    public var lastSeen: Instant {
        get { Instant(nanoseconds: Int64(lastSeenSeconds) * 1_000_000_000) }
        set { lastSeenSeconds = Int32(clamping: newValue.nanoseconds / 1_000_000_000) }
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
