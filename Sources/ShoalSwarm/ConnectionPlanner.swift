import ShoalCore

/// Which peers to dial, and when: the known addresses of one torrent's swarm, with connection limits
/// and exponential back-off for peers that failed.
///
/// Addresses come from everywhere (the command line, trackers, the DHT, PEX, incoming connections);
/// the planner keeps each once, remembers how it went, and hands out dials while the torrent has room:
/// at most `maxConnections` established or pending, and at most `maxHalfOpen` pending at once (a
/// flood of dials that never answer must not starve the torrent). A peer that fails is retried after
/// `baseRetry`, doubled at each failure up to `maxRetry`, and forgotten after `maxFailures`; a banned
/// peer is never dialled again and its incoming connections are refused.
public struct ConnectionPlanner: Sendable {
    public struct Limits: Sendable, Hashable {
        public var maxConnections: Int
        public var maxHalfOpen: Int
        public var maxCandidates: Int
        public var baseRetry: Interval
        public var maxRetry: Interval
        public var maxFailures: Int

        public init(
            maxConnections: Int = 50, maxHalfOpen: Int = 8, maxCandidates: Int = 4000,
            baseRetry: Interval = .seconds(10), maxRetry: Interval = .seconds(1800), maxFailures: Int = 6
        ) {
            self.maxConnections = maxConnections
            self.maxHalfOpen = maxHalfOpen
            self.maxCandidates = maxCandidates
            self.baseRetry = baseRetry
            self.maxRetry = maxRetry
            self.maxFailures = maxFailures
        }
    }

    /// Where an address was learnt (kept for reports and for preferring first-hand sources).
    public enum Source: Hashable, Sendable {
        case manual, tracker, dht, pex, lsd, incoming
    }

    enum State: Hashable, Sendable {
        /// Not connected; may be dialled from `notBefore`.
        case idle(notBefore: Instant)
        case connecting
        case connected
        case banned
    }

    struct Candidate: Hashable, Sendable {
        var state: State
        var source: Source
        var failures: Int
        /// Connections that ended in a protocol violation; never reset, so a peer cannot wash them
        /// out by reconnecting.
        var strikes: Int = 0
        /// Order of arrival, so that dials go out first-come first-served.
        var sequence: Int
    }

    public let limits: Limits
    private(set) var candidates: [PeerAddress: Candidate] = [:]
    private var nextSequence = 0
    private(set) var connectingCount = 0
    private(set) var connectedCount = 0
    /// Hosts banned: a ban is of the IP address, since a peer that connects to us again comes from a
    /// new port each time (as libtorrent's IP filter does; on loopback that bans every local peer).
    private(set) var bannedHosts: Set<PeerAddress.Host> = []

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Learns addresses; known ones keep their state. Past `maxCandidates` new ones are dropped.
    public mutating func add(_ addresses: some Sequence<PeerAddress>, source: Source, now: Instant) {
        for address in addresses where candidates[address] == nil {
            guard candidates.count < limits.maxCandidates else { return }
            candidates[address] = Candidate(state: .idle(notBefore: now), source: source, failures: 0, sequence: nextSequence)
            nextSequence += 1
        }
    }

    /// The addresses to dial now, marked as connecting. Honours both limits.
    public mutating func dialsDue(now: Instant) -> [PeerAddress] {
        let room = min(limits.maxConnections - connectingCount - connectedCount, limits.maxHalfOpen - connectingCount)
        guard room > 0 else { return [] }
        var due: [(address: PeerAddress, sequence: Int)] = []
        for (address, candidate) in candidates {
            if case .idle(let notBefore) = candidate.state, notBefore <= now, !bannedHosts.contains(address.host) {
                due.append((address, candidate.sequence))
            }
        }
        due.sort { $0.sequence < $1.sequence }
        let chosen = due.prefix(room).map(\.address)
        for address in chosen {
            candidates[address]?.state = .connecting
            connectingCount += 1
        }
        return chosen
    }

    /// A dial failed (refused, timed out, or the handshake did not complete).
    public mutating func connectFailed(_ address: PeerAddress, now: Instant) {
        guard var candidate = candidates[address], candidate.state == .connecting else { return }
        connectingCount -= 1
        candidate.failures += 1
        if candidate.failures >= limits.maxFailures {
            candidates[address] = nil
            return
        }
        candidate.state = .idle(notBefore: now + retryDelay(failures: candidate.failures))
        candidates[address] = candidate
    }

    /// A connection is established: an outgoing dial completed its handshake, or an incoming one
    /// arrived. Returns false when it must be refused (banned, a duplicate, or no room).
    public mutating func connected(_ address: PeerAddress, incoming: Bool, now: Instant) -> Bool {
        guard !bannedHosts.contains(address.host) else {
            if candidates[address]?.state == .connecting { connectingCount -= 1 }
            if candidates[address] != nil, candidates[address]?.state != .connected {
                candidates[address]?.state = .banned
            }
            return false
        }
        if var candidate = candidates[address] {
            switch candidate.state {
            case .banned, .connected:
                return false
            case .connecting:
                connectingCount -= 1
            case .idle:
                guard connectedCount + connectingCount < limits.maxConnections else { return false }
            }
            // Failures are cleared by a session that got through its handshake (see `disconnected`), not by
            // the TCP connection alone: a peer with no room accepts and hangs up.
            candidate.state = .connected
            candidates[address] = candidate
        } else {
            guard connectedCount + connectingCount < limits.maxConnections else { return false }
            add([address], source: incoming ? .incoming : .manual, now: now)
            guard candidates[address] != nil else { return false }
            candidates[address]?.state = .connected
        }
        connectedCount += 1
        return true
    }

    /// An established connection closed. A peer that closed in good order is retried after
    /// `baseRetry`; one that broke the protocol gets a strike and a longer wait, and is banned
    /// at `maxFailures` strikes.
    ///
    /// A connection that closed before the handshakes were exchanged counts as a failed dial (the peer
    /// accepted and hung up, as a peer with no room does): retried with back-off and forgotten after
    /// `maxFailures`, instead of redialled every `baseRetry` for ever.
    public mutating func disconnected(_ address: PeerAddress, misbehaved: Bool, handshaken: Bool = true, now: Instant) {
        guard var candidate = candidates[address], candidate.state == .connected else { return }
        connectedCount -= 1
        if !handshaken && !misbehaved {
            candidate.failures += 1
            if candidate.failures >= limits.maxFailures {
                candidates[address] = nil
                return
            }
            candidate.state = .idle(notBefore: now + retryDelay(failures: candidate.failures))
            candidates[address] = candidate
            return
        }
        candidate.failures = 0
        if misbehaved { candidate.strikes += 1 }
        if candidate.strikes >= limits.maxFailures {
            candidate.state = .banned
            candidates[address] = candidate
            bannedHosts.insert(address.host)
            return
        }
        candidate.state = .idle(notBefore: now + retryDelay(failures: max(candidate.strikes + 1, 1)))
        candidates[address] = candidate
    }

    /// Never again: the peer sent data that failed verification repeatedly, or attacked us.
    public mutating func ban(_ address: PeerAddress) {
        bannedHosts.insert(address.host)
        markBanned(address)
    }

    /// The address is ourselves: it is never dialled again (the host is not banned).
    public mutating func forgetSelf(_ address: PeerAddress) {
        markBanned(address)
    }

    /// Marks one address banned, leaving the counts of dials and connections right.
    private mutating func markBanned(_ address: PeerAddress) {
        switch candidates[address]?.state {
        case .connecting: connectingCount -= 1
        case .connected: connectedCount -= 1
        default: break
        }
        if candidates[address] == nil, candidates.count >= limits.maxCandidates { return }
        candidates[address] = Candidate(state: .banned, source: candidates[address]?.source ?? .manual, failures: 0, sequence: nextSequence)
        nextSequence += 1
    }

    public func isBanned(_ address: PeerAddress) -> Bool {
        candidates[address]?.state == .banned || bannedHosts.contains(address.host)
    }

    /// The earliest time at which a dial could become due (nil when nothing waits).
    public var nextWakeup: Instant? {
        var earliest: Instant?
        for candidate in candidates.values {
            if case .idle(let notBefore) = candidate.state, earliest.map({ notBefore < $0 }) ?? true {
                earliest = notBefore
            }
        }
        return earliest
    }

    /// When ``dialsDue(now:)`` could next return something: ``nextWakeup`` while the limits leave room
    /// for a dial, nil while they do not (only a closed connection or a finished dial makes room).
    public var nextDialTime: Instant? {
        guard connectingCount + connectedCount < limits.maxConnections, connectingCount < limits.maxHalfOpen else {
            return nil
        }
        return nextWakeup
    }

    /// Counts for reports.
    public var connectedPeers: Int { connectedCount }
    public var pendingDials: Int { connectingCount }
    public var knownPeers: Int { candidates.count }

    private func retryDelay(failures: Int) -> Interval {
        var delay = limits.baseRetry
        for _ in 1..<max(failures, 1) where delay < limits.maxRetry { delay = delay * 2 }
        return min(delay, limits.maxRetry)
    }
}
