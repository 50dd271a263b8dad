/// Counters a ``DHTNode`` keeps about its traffic.
public struct DHTStatistics: Hashable, Sendable {
    public var datagramsReceived = 0
    public var datagramsSent = 0
    public var queriesAnswered = 0
    /// Datagrams that did not decode (dropped; a malformed query with a readable `t` got error 203).
    public var malformed = 0
    /// Queries refused by the per-source or total rate limit.
    public var rateLimited = 0
    /// Responses and errors that matched no pending query (late, spoofed or duplicated).
    public var unexpected = 0
    /// Queries that timed out.
    public var timeouts = 0
    /// announce_peer queries refused for a bad token.
    public var badTokens = 0
    public var lookupsStarted = 0
    public var lookupsFinished = 0

    public init() {}
}
