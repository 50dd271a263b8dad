import ShoalCore

/// The tracker server's memory: for each info-hash, the peers that announced it (IPv4 and IPv6 apart),
/// how many seed, and how many completed downloads were reported. A pure core: announces and time come
/// in, counts and compact peers go out; the HTTP and UDP servers share one registry.
///
/// Built for millions of peers: swarms live in one array (found through a dictionary from the inline
/// 20-byte info-hash to their position), their peers in ``PeerStore``s of packed records sorted by a keyed
/// hash, so a peer costs its 7 bytes (IPv4; 19 for IPv6) and an eighth more of growth room at most, with no
/// index, object or allocation of its own. Peers that miss their announces expire (`peerTimeout`); expired peers and
/// empty swarms are swept a bounded amount at a time (`sweep`), so no call takes long.
public struct SwarmRegistry: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// What announces answer as `interval`, seconds.
        public var interval: Int
        /// What announces answer as `min interval`, seconds.
        public var minInterval: Int
        /// A peer that has not announced for this long is gone, seconds.
        public var peerTimeout: Int
        /// Peers given when the client does not say (or says -1).
        public var defaultNumWant: Int
        /// Peers given at most, whatever the client asks.
        public var maxNumWant: Int
        /// Info-hashes served (a private tracker's allow-list); nil: any.
        public var allowList: Set<Bytes20>?
        /// New swarms and peers are refused past these (a flood of random info-hashes must not take
        /// all memory).
        public var maxSwarms: Int
        public var maxPeers: Int
        /// For the choice of peers and the index's hash key.
        public var seed: UInt64

        public init(
            interval: Int = 1800, minInterval: Int? = nil, peerTimeout: Int? = nil, defaultNumWant: Int = 50,
            maxNumWant: Int = 200, allowList: Set<Bytes20>? = nil, maxSwarms: Int = 10_000_000,
            maxPeers: Int = 100_000_000, seed: UInt64
        ) {
            self.interval = max(interval, 1)
            self.minInterval = min(minInterval ?? max(self.interval / 2, 1), self.interval)
            // Two missed announces, plus a little for clocks and slow clients.
            self.peerTimeout = peerTimeout ?? (2 * self.interval + 60)
            self.defaultNumWant = defaultNumWant
            self.maxNumWant = maxNumWant
            self.allowList = allowList
            self.maxSwarms = maxSwarms
            self.maxPeers = maxPeers
            self.seed = seed
        }
    }

    /// An announce as the servers hand it over (from an HTTP query or a BEP 15 packet).
    public struct Announce: Hashable, Sendable {
        public var infoHash: Bytes20
        /// The address the request came from (trackers do not trust a claimed one, BEP 7).
        public var host: TrackerHost
        public var port: UInt16
        public var event: AnnounceEvent
        public var left: Int64
        /// nil or negative: the default.
        public var numWant: Int?

        public init(infoHash: Bytes20, host: TrackerHost, port: UInt16, event: AnnounceEvent, left: Int64, numWant: Int?) {
            self.infoHash = infoHash
            self.host = host
            self.port = port
            self.event = event
            self.left = left
            self.numWant = numWant
        }
    }

    /// Why an announce was refused.
    public enum Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        /// The info-hash is not in the allow-list.
        case notAllowed
        /// The registry holds `maxSwarms` swarms or `maxPeers` peers.
        case full

        public var description: String {
            switch self {
            case .notAllowed: "info_hash not in the allow-list of this tracker"
            case .full: "the tracker is full"
            }
        }
    }

    struct Swarm: Sendable {
        var infoHash: Bytes20
        var v4 = PeerStore<IPv4Host>()
        var v6 = PeerStore<IPv6Host>()
        var completed: Int64 = 0
        /// Registry seconds since which it had no peer; nil while it has some.
        var emptySince: UInt32?

        var seeders: Int { v4.seeders + v6.seeders }
        var leechers: Int { v4.leechers + v6.leechers }
        var peerCount: Int { v4.count + v6.count }
    }

    public let configuration: Configuration
    var positions: [Bytes20: Int32] = [:]
    var swarms: ContiguousArray<Swarm> = []
    /// Registry time counts whole seconds from here.
    private let origin: Instant
    private var random: SplitMix64
    let key: (UInt64, UInt64)
    private var sweepCursor = 0
    public internal(set) var peerCount = 0

    public init(configuration: Configuration, now: Instant) {
        self.configuration = configuration
        origin = now
        var random = SplitMix64(seed: configuration.seed)
        key = (random.next(), random.next())
        self.random = random
    }

    public var swarmCount: Int { swarms.count }

    /// Registry seconds at `now`.
    @inline(__always)
    func seconds(_ now: Instant) -> UInt32 {
        UInt32(clamping: (now - origin).nanoseconds / 1_000_000_000)
    }

    /// Seconds of an expiry epoch: an eighth of the peer timeout, rounded up. Peers keep the epoch they
    /// expire in, modulo 64, in their record's last byte (opentracker keeps peers in pools by age, 5
    /// minutes apart): a peer goes at most an epoch after its timeout.
    var epochLength: UInt32 { UInt32(clamping: max((configuration.peerTimeout + 7) / 8, 1)) }

    /// Peers a sweep should visit per second: enough to go round the registry within 10 expiry epochs
    /// (expiry epochs are kept modulo 64, so a peer must be swept within 22 epochs after it expired).
    public var sweepBudgetPerSecond: Int { max(200_000, peerCount / (10 * Int(epochLength)) + 1) }

    /// The epoch of registry second `time`.
    @inline(__always)
    func epoch(_ time: UInt32) -> UInt32 { time / epochLength }

    /// Peers to give for a request of `numWant` (nil or negative: the default), within `limit`.
    @inline(__always)
    public func peersToGive(_ numWant: Int?, limit: Int) -> Int {
        guard let numWant, numWant >= 0 else { return min(configuration.defaultNumWant, limit) }
        return min(numWant, configuration.maxNumWant, limit)
    }

    /// Records an announce and appends up to the wanted number of other peers of the same address family,
    /// compact (BEP 23: 6 bytes; BEP 7: 18), to `peers`. A `stopped` announce removes the peer and gets
    /// no peers. Returns the swarm's counts after the announce.
    public mutating func announce(
        _ announce: Announce, now: Instant, limit: Int = .max, peers: inout [UInt8]
    ) throws(Refusal) -> ScrapeCounts {
        let time = seconds(now)
        // Swarms exist only for allowed info-hashes: the allow-list is asked only for a new one (one hash
        // of the info-hash per announce instead of two).
        let known = positions[announce.infoHash].map(Int.init)
        if known == nil, let allowList = configuration.allowList, !allowList.contains(announce.infoHash) { throw .notAllowed }
        guard let position = known ?? swarmPosition(announce.infoHash, create: announce.event != .stopped, time: time) else {
            if announce.event == .stopped { return ScrapeCounts(seeders: 0, completed: 0, leechers: 0) }
            throw .full
        }
        let want = announce.event == .stopped ? 0 : peersToGive(announce.numWant, limit: limit)
        let expires = epoch(time &+ UInt32(clamping: configuration.peerTimeout))
        let seeder = announce.left == 0
        let canAdd = peerCount < configuration.maxPeers
        var random = self.random
        defer { self.random = random }
        let change: StoreChange
        switch announce.host {
        case .ipv4(let value):
            change = Self.update(
                &swarms[position].v4, IPv4Host(value: value), announce, expires: expires, seeder: seeder, want: want,
                canAdd: canAdd, key: key, random: &random, peers: &peers)
        case .ipv6(let high, let low):
            change = Self.update(
                &swarms[position].v6, IPv6Host(high: high, low: low), announce, expires: expires, seeder: seeder,
                want: want, canAdd: canAdd, key: key, random: &random, peers: &peers)
        }
        if change.refused { throw .full }
        peerCount += change.added
        // In place: a copy of the swarm would retain and release its four arrays.
        return Self.finish(&swarms[position], completed: change.completed, time: time)
    }

    /// Counts a completion, notes when the swarm became empty, and gives its counts.
    @inline(__always)
    private static func finish(_ swarm: inout Swarm, completed: Bool, time: UInt32) -> ScrapeCounts {
        if completed { swarm.completed &+= 1 }
        if swarm.peerCount == 0 {
            if swarm.emptySince == nil { swarm.emptySince = time }
        } else if swarm.emptySince != nil {
            swarm.emptySince = nil
        }
        return ScrapeCounts(seeders: Int64(swarm.seeders), completed: swarm.completed, leechers: Int64(swarm.leechers))
    }

    /// What an announce changed in a store.
    private struct StoreChange {
        /// Peers added (1), removed (-1) or neither (0).
        var added = 0
        /// A `completed` to count.
        var completed = false
        /// A new peer that did not fit.
        var refused = false
    }

    private static func update<Address: RegistryAddress>(
        _ store: inout PeerStore<Address>, _ address: Address, _ announce: Announce, expires: UInt32, seeder: Bool,
        want: Int, canAdd: Bool, key: (UInt64, UInt64), random: inout SplitMix64, peers: inout [UInt8]
    ) -> StoreChange {
        var change = StoreChange()
        let own = Address.key(address, port: announce.port, secret: key)
        let (location, found) = store.find(own)
        if announce.event == .stopped {
            if found {
                store.remove(at: location)
                change.added = -1
            }
            return change
        }
        if announce.event == .completed, !found || !store.flags(at: location).isCounted {
            change.completed = true
        }
        if found {
            let counted = change.completed || store.flags(at: location).isCounted
            store.update(at: location, flags: PeerFlags(seeder: seeder, counted: counted, expires: expires))
        } else {
            guard canAdd else {
                change.refused = true
                change.completed = false
                return change
            }
            store.insert(own, flags: PeerFlags(seeder: seeder, counted: change.completed, expires: expires), at: location)
            change.added = 1
        }
        // Room for every peer first (one memset), then entries stored in place: appending byte by byte
        // checked the array's capacity 300 times an announce.
        let start = peers.count
        let size = Address.compactSize
        peers.append(contentsOf: repeatElement(0, count: want * size))
        let written = peers.withUnsafeMutableBytes { output in
            store.sample(want, excluding: own, seedersWanted: !seeder, secret: key, random: &random, into: output.baseAddress! + start)
        }
        peers.removeLast((want - written) * size)
        return change
    }

    /// A swarm's counts; nil when the registry does not know it.
    public func counts(_ infoHash: Bytes20) -> ScrapeCounts? {
        guard let position = positions[infoHash].map(Int.init) else { return nil }
        return ScrapeCounts(
            seeders: Int64(swarms[position].seeders), completed: swarms[position].completed,
            leechers: Int64(swarms[position].leechers))
    }

    /// Every swarm's counts (a full scrape), in info-hash order.
    public func allCounts() -> [(Bytes20, ScrapeCounts)] {
        swarms.map { ($0.infoHash, ScrapeCounts(seeders: Int64($0.seeders), completed: $0.completed, leechers: Int64($0.leechers))) }
            .sorted { $0.0 < $1.0 }
    }

    mutating func swarmPosition(_ infoHash: Bytes20, create: Bool, time: UInt32) -> Int? {
        if let position = positions[infoHash] { return Int(position) }
        guard create, swarms.count < configuration.maxSwarms else { return nil }
        positions[infoHash] = Int32(swarms.count)
        swarms.append(Swarm(infoHash: infoHash, emptySince: time))
        return swarms.count - 1
    }

    // MARK: - Expiry

    /// Removes expired peers, visiting about `budget` peers from where the last sweep stopped, and swarms
    /// that stayed empty for `peerTimeout` (their completed count goes with them). Returns the peers
    /// removed. Call it often with a small budget (the runtime: every second).
    @discardableResult
    public mutating func sweep(now: Instant, budget: Int) -> Int {
        let time = seconds(now)
        let current = epoch(time)
        var visited = 0
        var removed = 0
        var steps = 0
        while visited < budget, !swarms.isEmpty, steps < swarms.count {
            if sweepCursor >= swarms.count { sweepCursor = 0 }
            let position = sweepCursor
            visited += swarms[position].peerCount + 1
            let gone = swarms[position].v4.removeExpired(now: current) + swarms[position].v6.removeExpired(now: current)
            removed += gone
            peerCount -= gone
            if swarms[position].peerCount == 0 {
                let since = swarms[position].emptySince ?? time
                swarms[position].emptySince = since
                if time &- since >= UInt32(clamping: configuration.peerTimeout) || since > time {
                    removeSwarm(at: position)
                    steps += 1
                    continue
                }
            }
            sweepCursor += 1
            steps += 1
        }
        return removed
    }

    private mutating func removeSwarm(at position: Int) {
        positions[swarms[position].infoHash] = nil
        let last = swarms.count - 1
        if position != last {
            swarms[position] = swarms[last]
            positions[swarms[position].infoHash] = Int32(position)
        }
        swarms.removeLast()
    }

    // MARK: - Memory

    /// Bytes held by the registry's own structures (peer records and indices, swarms, the dictionary of
    /// info-hashes), an estimate from capacities.
    public var bytesAllocated: Int {
        var bytes = swarms.capacity * MemoryLayout<Swarm>.stride
        // A dictionary entry: key and value, plus about a third of a slot more for its load factor.
        bytes += positions.capacity * (MemoryLayout<Bytes20>.stride + MemoryLayout<Int32>.stride) * 4 / 3
        for swarm in swarms { bytes += swarm.v4.bytesAllocated + swarm.v6.bytesAllocated }
        return bytes
    }
}
