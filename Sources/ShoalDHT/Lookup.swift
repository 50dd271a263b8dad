import ShoalCore

/// One iterative Kademlia lookup (BEP 5, "Overview"; Maymounkov and Mazières, section 2.3): query the α closest
/// known nodes to the target in parallel, learn closer ones from their answers, and stop when the k closest
/// nodes seen have all answered. Pure state: the ``DHTNode`` sends the queries it picks and reports back.
///
/// Bounded: at most `maxCandidates` nodes are kept (the farthest unqueried ones give way), at most
/// `maxQueries` queries are sent and the lookup ends after `maxDuration`. A query unanswered after the soft
/// timeout no longer holds one of the α slots (so one slow node cannot stall the lookup), and fails at the
/// hard timeout (the node's transaction timeout).
public struct Lookup: Sendable {
    public enum Kind: Hashable, Sendable {
        /// find_node: converge on the nodes closest to the target (joining, refreshing a bucket).
        case findNode
        /// get_peers: also collect the peers the nodes on the way store for the info-hash.
        case getPeers
        /// get_peers, then announce_peer to the k closest that gave a token, for a peer on `port`, or on the
        /// UDP port the announce comes from when `impliedPort` (BEP 5, "announce_peer").
        case announce(port: UInt16, impliedPort: Bool)

        var usesGetPeers: Bool { self != .findNode }
    }

    public struct Configuration: Hashable, Sendable {
        /// α: queries in flight at once (Kademlia: 3).
        public var parallelism: Int
        /// k: how many closest nodes must answer before the lookup ends (BEP 5: 8).
        public var closestCount: Int
        public var maxCandidates: Int
        public var maxQueries: Int
        public var maxDuration: Interval
        /// After this long without an answer a query to one of the k closest is sent again, and after as long
        /// again (or at once for other nodes) it stops holding an α slot: two smoothed round trips of the
        /// node's queries, from `minSoftTimeout` to `softTimeout` (the latter until a round trip is measured).
        public var softTimeout: Interval
        public var minSoftTimeout: Interval
        /// The most peers a get_peers lookup keeps.
        public var maxPeers: Int

        public init(
            parallelism: Int = 3, closestCount: Int = 8, maxCandidates: Int = 64, maxQueries: Int = 128,
            maxDuration: Interval = .seconds(60), softTimeout: Interval = .seconds(1),
            minSoftTimeout: Interval = .milliseconds(200), maxPeers: Int = 1000
        ) {
            self.minSoftTimeout = minSoftTimeout
            self.parallelism = parallelism
            self.closestCount = closestCount
            self.maxCandidates = maxCandidates
            self.maxQueries = maxQueries
            self.maxDuration = maxDuration
            self.softTimeout = softTimeout
            self.maxPeers = maxPeers
        }
    }

    struct Candidate: Sendable {
        enum State: UInt8, Sendable {
            case fresh
            case inFlight
            /// In flight past the soft timeout.
            case slow
            case responded
            case failed
        }
        /// Unknown for bootstrap nodes until they answer.
        var id: NodeID?
        var address: NodeAddress
        /// XOR distance to the target (the largest possible while the id is unknown).
        var distance: NodeID
        var state: State
        /// Round trips from the lookup's start: 1 for the nodes it started from, n+1 for a node learned from
        /// the answer of a node at n.
        var depth: UInt8
        /// Queries to this node awaiting an answer (the first, and a resend after the soft timeout).
        var outstanding: UInt8 = 0
        var resent = false
        var token: [UInt8]?
    }

    public let id: LookupID
    public let kind: Kind
    public let target: NodeID
    public let family: NodeAddress.Family
    public let started: Instant
    /// Our own id: never a candidate (other nodes name us in their answers).
    let ownID: NodeID?
    let configuration: Configuration
    private(set) var candidates: [Candidate] = []
    private var peerSet: Set<NodeAddress> = []
    private(set) var peers: [NodeAddress] = []
    private(set) var queries = 0
    private(set) var responses = 0
    private(set) var timeouts = 0
    /// Announces sent and not yet answered or timed out.
    var announcesPending = 0
    private(set) var announced = 0
    private(set) var phase: Phase = .searching
    /// Answers in a row that brought no node closer than the closest known (Kademlia: when a round of α
    /// answers brings none, the lookup queries all of the k closest not yet asked).
    private var unproductiveAnswers = 0

    enum Phase: Sendable {
        case searching
        /// Converged (or out of queries or time): the node announces or finishes.
        case searchDone
        case announcing
        case finished
    }

    /// Starts from the closest nodes of our table and from bootstrap addresses (whose ids are not known yet).
    public init(
        id: LookupID, kind: Kind, target: NodeID, family: NodeAddress.Family, from nodes: [NodeInfo],
        bootstrap: [NodeAddress] = [], excluding ownID: NodeID? = nil, configuration: Configuration, now: Instant
    ) {
        self.id = id
        self.ownID = ownID
        self.kind = kind
        self.target = target
        self.family = family
        self.started = now
        self.configuration = configuration
        for node in nodes where node.address.family == family { add(id: node.id, address: node.address, depth: 1) }
        for address in bootstrap where address.family == family { add(id: nil, address: address, depth: 1) }
    }

    public var isFinished: Bool { phase == .finished }
    var isSearching: Bool { phase == .searching }

    /// The queries to send now: the closest unqueried candidates among the k closest that are not failed,
    /// while fewer than α queries are in flight. Marks them in flight. `budget` caps how many may be sent
    /// (the node's transaction limit).
    mutating func nextQueries(now: Instant, budget: Int) -> [(id: NodeID?, address: NodeAddress)] {
        guard phase == .searching else { return [] }
        if now - started >= configuration.maxDuration {
            phase = .searchDone
            return []
        }
        var inFlight = 0
        var picks: [Int] = []
        var considered = 0
        for index in candidates.indices {
            switch candidates[index].state {
            case .inFlight:
                inFlight += 1
                considered += 1
            case .responded:
                considered += 1
            case .fresh:
                picks.append(index)
                considered += 1
            case .slow, .failed:
                break
            }
            if considered >= configuration.closestCount { break }
        }
        // The last round: once the closest node known has answered (it named its own neighbours, the nodes we
        // look for), or α answers in a row brought nothing closer (Kademlia), the rest of the k closest are
        // asked at once.
        let closestAnswered = candidates.first { $0.state != .failed && $0.state != .slow }?.state == .responded
        let parallelism =
            closestAnswered || unproductiveAnswers >= configuration.parallelism
            ? configuration.closestCount : configuration.parallelism
        var room = Swift.min(parallelism - inFlight, budget, configuration.maxQueries - queries)
        var chosen: [(id: NodeID?, address: NodeAddress)] = []
        for index in picks where room > 0 {
            candidates[index].state = .inFlight
            candidates[index].outstanding &+= 1
            chosen.append((candidates[index].id, candidates[index].address))
            queries += 1
            room -= 1
        }
        if chosen.isEmpty { checkConverged() }
        return chosen
    }

    /// A node answered: its id is now known, the nodes it named become candidates, its peers and token are kept.
    /// Returns the peers not seen before.
    mutating func responded(
        from address: NodeAddress, id: NodeID, nodes: [NodeInfo], token: [UInt8]?, values: [NodeAddress]
    ) -> [NodeAddress] {
        guard let index = candidates.firstIndex(where: { $0.address == address }) else { return [] }
        var candidate = candidates.remove(at: index)
        guard candidate.state == .inFlight || candidate.state == .slow else {
            candidates.insert(candidate, at: index)
            return []
        }
        responses += 1
        if (candidate.id != nil && candidate.id != id) || id == ownID {
            // It answered with another id than the one we were told: do not trust what it says.
            candidate.state = .failed
            insert(candidate)
            return []
        }
        candidate.id = id
        candidate.distance = id ^ target
        candidate.state = .responded
        candidate.token = token
        let depth = candidate.depth
        // A node that is already a candidate under another address is a duplicate: keep only what it said.
        if !candidates.contains(where: { $0.id == id }) { insert(candidate) }
        let closestBefore = candidates.first { $0.state != .failed }?.distance
        for node in nodes where node.address.family == family {
            add(id: node.id, address: node.address, depth: depth &+ 1)
        }
        let closestAfter = candidates.first { $0.state != .failed }?.distance
        if let closestAfter, closestBefore.map({ closestAfter < $0 }) ?? true {
            unproductiveAnswers = 0
        } else {
            unproductiveAnswers += 1
        }
        var fresh: [NodeAddress] = []
        if kind.usesGetPeers {
            for peer in values where peers.count < configuration.maxPeers && peer.port != 0 {
                if peerSet.insert(peer).inserted {
                    peers.append(peer)
                    fresh.append(peer)
                }
            }
        }
        return fresh
    }

    /// A query failed (timeout or error reply): once no query to it is outstanding, the node no longer counts
    /// among the closest.
    mutating func failed(_ address: NodeAddress, timedOut: Bool) {
        guard let index = candidates.firstIndex(where: { $0.address == address }),
            candidates[index].state == .inFlight || candidates[index].state == .slow
        else { return }
        if timedOut { timeouts += 1 } else { responses += 1 }
        if candidates[index].outstanding > 0 { candidates[index].outstanding -= 1 }
        if candidates[index].outstanding == 0 || !timedOut { candidates[index].state = .failed }
    }

    /// A query passed the soft timeout. A node among the k closest is asked once more (the datagram or its
    /// answer may have been lost; KRPC itself never retries) and the lookup returns true: send it again.
    /// Otherwise the node stops holding an α slot.
    mutating func softTimedOut(_ address: NodeAddress) -> Bool {
        guard let index = candidates.firstIndex(where: { $0.address == address }), candidates[index].state == .inFlight
        else { return false }
        if !candidates[index].resent && isAmongClosest(index) {
            candidates[index].resent = true
            candidates[index].outstanding &+= 1
            queries += 1
            return true
        }
        candidates[index].state = .slow
        return false
    }

    /// Whether the candidate at `index` is among the k closest that are neither failed nor slow.
    private func isAmongClosest(_ index: Int) -> Bool {
        var rank = 0
        for position in 0..<index where candidates[position].state != .failed && candidates[position].state != .slow {
            rank += 1
            if rank >= configuration.closestCount { return false }
        }
        return true
    }

    /// The k closest nodes that answered, closest first, with their tokens.
    var closestResponded: [(info: NodeInfo, token: [UInt8]?)] {
        candidates.lazy.filter { $0.state == .responded && $0.id != nil }.prefix(configuration.closestCount)
            .map { (NodeInfo(id: $0.id!, address: $0.address), $0.token) }
    }

    /// Moves to the announce phase: the nodes to announce to (the k closest that answered with a token).
    mutating func beginAnnouncing() -> [(info: NodeInfo, token: [UInt8])] {
        let targets = closestResponded.compactMap { entry in entry.token.map { (entry.info, $0) } }
        announcesPending = targets.count
        phase = targets.isEmpty ? .finished : .announcing
        return targets
    }

    mutating func announceAnswered(success: Bool) {
        announcesPending -= 1
        if success { announced += 1 }
        if announcesPending <= 0 { phase = .finished }
    }

    var searchDone: Bool { phase == .searchDone }

    mutating func finish() { phase = .finished }

    func result(now: Instant) -> LookupResult {
        let closest = closestResponded
        let hops = candidates.first { $0.state == .responded }.map { Int($0.depth) } ?? 0
        return LookupResult(
            id: id, kind: kind, target: target, family: family, closest: closest.map(\.info),
            peers: peers.map(\.peerAddress), queries: queries, responses: responses, timeouts: timeouts,
            hops: hops, announced: announced, duration: now - started)
    }

    // MARK: Internals

    /// Ends the search when the k closest candidates that are neither failed nor slow have all answered, or
    /// when no query is left to send or wait for. A slow node (past the soft timeout) does not hold the lookup
    /// up once k other nodes have answered; with fewer answers the lookup waits for it to fail, unless it was
    /// already asked twice.
    private mutating func checkConverged() {
        guard phase == .searching else { return }
        var answered = 0
        var busy = false
        for candidate in candidates where candidate.state != .failed && candidate.state != .slow {
            if candidate.state != .responded {
                busy = true
                break
            }
            answered += 1
            if answered >= configuration.closestCount { break }
        }
        // A node asked twice (the resend after the soft timeout) and silent is not waited for.
        let anyInFlight = candidates.contains { $0.state == .inFlight || ($0.state == .slow && !$0.resent) }
        if (!busy && (answered >= configuration.closestCount || !anyInFlight))
            || (queries >= configuration.maxQueries && !anyInFlight) || (!anyInFlight && !hasFresh)
        {
            phase = .searchDone
        }
    }

    private var hasFresh: Bool {
        var considered = 0
        for candidate in candidates where candidate.state != .failed && candidate.state != .slow {
            if candidate.state == .fresh { return true }
            considered += 1
            if considered >= configuration.closestCount { break }
        }
        return false
    }

    private mutating func add(id: NodeID?, address: NodeAddress, depth: UInt8) {
        guard address.port != 0, id == nil || id != ownID else { return }
        if candidates.contains(where: { $0.address == address || (id != nil && $0.id == id) }) { return }
        let candidate = Candidate(
            id: id, address: address, distance: id.map { $0 ^ target } ?? .max, state: .fresh, depth: depth)
        if candidates.count >= configuration.maxCandidates {
            // Full: the farthest candidate not yet asked gives way to a closer newcomer.
            guard let farthest = candidates.lastIndex(where: { $0.state == .fresh }),
                candidate.distance < candidates[farthest].distance
            else { return }
            candidates.remove(at: farthest)
        }
        insert(candidate)
    }

    private mutating func insert(_ candidate: Candidate) {
        var low = 0
        var high = candidates.count
        while low < high {
            let mid = (low + high) / 2
            if candidates[mid].distance < candidate.distance { low = mid + 1 } else { high = mid }
        }
        candidates.insert(candidate, at: low)
    }
}
