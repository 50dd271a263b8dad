import ShoalCore

/// Decides whom we upload to: the choking algorithm of BEP 3 ("Choking and optimistic unchoking"), in one
/// function like libtorrent's `unchoke_sort`.
///
/// Call `rechoke` every `rechokeInterval` (10 s; more often only when a peer leaves or stops being
/// interested). Each call:
///
/// - **while downloading (tit-for-tat)** gives the `regularSlots` (4) to the interested peers that send us
///   data fastest. A peer that sends us nothing for `snubTimeout` (60 s) while we are interested in it is
///   snubbing us and gets no regular slot (anti-snubbing); it can still win the optimistic one. Ties (at the
///   start nobody has sent anything; later, peers with nothing we want) keep currently unchoked peers, then
///   go to the peer that gave us the most beyond what it got (a free-rider comes last), then fall at random.
/// - **while seeding (round robin)** keeps unchoked peers until they have had their share (`seedingQuota`
///   bytes, or `seedingTimeQuota` unchoked), then hands their slot to the interested peer that has waited
///   longest since its last unchoke; among peers still within their share, the fastest to upload to rank
///   first. libtorrent's `round_robin` seed choker works so; every leecher is served within a bounded number
///   of rounds.
/// - **optimistic unchoke**: `optimisticSlots` (1) more interested peers, chosen at random among the rest,
///   kept for `optimisticInterval` (30 s) and then rotated. Peers connected for less than `newPeerAge` (60 s,
///   two rotations) are `newPeerWeight` (3) times as likely to be chosen, so that a newcomer with nothing to
///   trade soon gets a first piece (BEP 3). While its turn lasts, an optimistic peer stays out of the regular
///   ranking (as in libtorrent); afterwards it competes like any other, so a fast one moves to a regular slot.
///
/// Not done: BEP 3's unchoking of uninterested peers that upload faster than the worst unchoked one (modern
/// clients such as libtorrent drop it too); choked peers are the caller's to keep choked.
public struct Choker: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// Peers unchoked for their rate (tit-for-tat) or in rotation (seeding).
        public var regularSlots: Int
        /// Peers unchoked at random, on top of the regular slots.
        public var optimisticSlots: Int
        /// How often the caller should rechoke.
        public var rechokeInterval: Interval
        /// How long an optimistic unchoke lasts.
        public var optimisticInterval: Interval
        /// Peers connected for less than this are new, and favoured for the optimistic unchoke.
        public var newPeerAge: Interval
        /// How much likelier a new peer is to be the optimistic unchoke.
        public var newPeerWeight: Int
        /// A peer that sends us nothing for this long while we are interested is snubbing us.
        public var snubTimeout: Interval
        /// Seeding: bytes a peer gets before it yields its slot (libtorrent: 20 pieces, which the torrent
        /// engine sets; 5 MiB is 20 of 256 KiB).
        public var seedingQuota: Int64
        /// Seeding: time unchoked after which a peer yields its slot even short of `seedingQuota`.
        public var seedingTimeQuota: Interval

        public init(
            regularSlots: Int = 4, optimisticSlots: Int = 1, rechokeInterval: Interval = .seconds(10),
            optimisticInterval: Interval = .seconds(30), newPeerAge: Interval = .seconds(60),
            newPeerWeight: Int = 3, snubTimeout: Interval = .seconds(60), seedingQuota: Int64 = 5 << 20,
            seedingTimeQuota: Interval = .seconds(60)
        ) {
            self.regularSlots = regularSlots
            self.optimisticSlots = optimisticSlots
            self.rechokeInterval = rechokeInterval
            self.optimisticInterval = optimisticInterval
            self.newPeerAge = newPeerAge
            self.newPeerWeight = newPeerWeight
            self.snubTimeout = snubTimeout
            self.seedingQuota = seedingQuota
            self.seedingTimeQuota = seedingTimeQuota
        }
    }

    /// What the choker remembers of a peer it has seen unchoked.
    struct History: Hashable, Sendable {
        /// When the peer was last unchoked.
        var unchokedAt: Instant
        /// `bytesSent` at that time: what it has had since is its share so far.
        var sentAtUnchoke: Int64
        /// Whether the peer was unchoked at the last rechoke.
        var isUnchoked: Bool
    }

    public var configuration: Configuration
    /// The optimistic unchokes and when each was chosen.
    private(set) var optimistic: [PeerKey: Instant] = [:]
    private(set) var history: [PeerKey: History] = [:]
    /// When `rechoke` last ran.
    public private(set) var lastRechoke: Instant?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// When the next rechoke is due: now, if there has been none.
    public func nextRechoke(now: Instant) -> Instant {
        lastRechoke.map { $0 + configuration.rechokeInterval } ?? now
    }

    /// Whether the peer is snubbing us: we are interested, and it has sent us nothing for `snubTimeout`
    /// (counted from its connection if it never has).
    public func isSnubbed(_ peer: PeerStats, now: Instant) -> Bool {
        peer.amInterested && now - (peer.lastBlockReceived ?? peer.connectedSince) >= configuration.snubTimeout
    }

    /// Decides whom to unchoke.
    /// - Parameters:
    ///   - peers: every connected peer of the torrent (a key listed twice counts once).
    ///   - seeding: true when we have every piece we want, so that only our upload matters.
    ///   - random: the source of tie-breaks and of the optimistic choice.
    ///
    /// A torrent rechokes each of its peers every 10 s, so a simulated swarm of thousands does this millions
    /// of times: peers are handled by their index in `peers` (found by binary search when the keys come in
    /// ascending order, as the torrent gives them), and the choker's dictionaries are read once per peer and
    /// written only where something changes.
    public mutating func rechoke(
        peers input: [PeerStats], now: Instant, seeding: Bool, random: inout some RandomNumberGenerator
    ) -> ChokeDecision {
        let peers = Self.unique(input)
        let ascending = zip(peers, peers.dropFirst()).allSatisfy { $0.key < $1.key }
        func index(of key: PeerKey) -> Int? {
            guard ascending else { return peers.firstIndex { $0.key == key } }
            var (low, high) = (0, peers.count)
            while low < high {
                let middle = (low + high) / 2
                if peers[middle].key < key { low = middle + 1 } else { high = middle }
            }
            return low < peers.count && peers[low].key == key ? low : nil
        }
        // Keys are never reused, so an entry of a peer that left only costs memory: forget them now and then.
        if history.count > 2 * peers.count + 16 { history = history.filter { index(of: $0.key) != nil } }
        for peer in peers {
            let recorded = history[peer.key]
            if let since = peer.unchokedSince {
                if recorded?.isUnchoked != true {
                    // Unchoked, but not by a decision of ours: its share counts from now.
                    history[peer.key] = History(unchokedAt: since, sentAtUnchoke: peer.bytesSent, isUnchoked: true)
                }
            } else if recorded?.isUnchoked == true {
                history[peer.key]!.isUnchoked = false
            }
        }

        let tieBreaks = peers.map { _ in random.next() }
        // The optimistic unchokes still interested and within their turn; they hold their slot and stay out of
        // the regular ranking until it ends (as in libtorrent), so that a turn is a turn. With fewer slots than
        // before, the most recent turns go on.
        let previous = optimistic.compactMap { key, since in index(of: key).map { (index: $0, since: since) } }
        let running = previous.filter { peers[$0.index].isInterested && now - $0.since < configuration.optimisticInterval }
        let kept = running.sorted { ($1.since, peers[$0.index].key) < ($0.since, peers[$1.index].key) }
            .prefix(max(0, configuration.optimisticSlots))
        var role = [Role](repeating: .choked, count: peers.count)
        for turn in kept { role[turn.index] = .optimistic }
        optimistic = Dictionary(uniqueKeysWithValues: kept.map { (peers[$0.index].key, $0.since) })

        let ranked =
            seeding
            ? rankForSeeding(peers, roles: role, now: now, tieBreaks: tieBreaks)
            : rankForTrading(peers, roles: role, now: now, tieBreaks: tieBreaks)
        for index in ranked.prefix(max(0, configuration.regularSlots)) { role[index] = .regular }

        // Free optimistic slots go at random to interested peers outside the regular ones, new ones weighted;
        // a peer whose turn just ended is chosen again only when nobody else is left.
        var free = max(0, configuration.optimisticSlots - kept.count)
        if free > 0 {
            var endedTurn = [Bool](repeating: false, count: peers.count)
            for turn in previous { endedTurn[turn.index] = true }
            let candidates = peers.indices.filter { peers[$0].isInterested && role[$0] == .choked }
            let fresh = candidates.filter { !endedTurn[$0] }
            var pool = fresh.isEmpty ? candidates : fresh
            let newWeight = max(1, configuration.newPeerWeight)
            var weights = pool.map { now - peers[$0].connectedSince < configuration.newPeerAge ? newWeight : 1 }
            while free > 0, !pool.isEmpty {
                var ticket = Int.random(in: 0..<weights.reduce(0, +), using: &random)
                var position = 0
                while ticket >= weights[position] {
                    ticket -= weights[position]
                    position += 1
                }
                role[pool[position]] = .optimistic
                optimistic[peers[pool[position]].key] = now
                pool.remove(at: position)
                weights.remove(at: position)
                free -= 1
            }
        }

        var decision = ChokeDecision(unchoked: [], optimistic: [], newlyUnchoked: [], newlyChoked: [])
        for (index, peer) in peers.enumerated() {
            if role[index] == .choked {
                if history[peer.key]?.isUnchoked == true { history[peer.key]!.isUnchoked = false }
                if !peer.isChoked { decision.newlyChoked.append(peer.key) }
                continue
            }
            decision.unchoked.append(peer.key)
            if role[index] == .optimistic { decision.optimistic.append(peer.key) }
            if peer.isChoked {
                history[peer.key] = History(unchokedAt: now, sentAtUnchoke: peer.bytesSent, isUnchoked: true)
                decision.newlyUnchoked.append(peer.key)
            }
        }
        if !ascending {
            decision.unchoked.sort()
            decision.optimistic.sort()
            decision.newlyUnchoked.sort()
            decision.newlyChoked.sort()
        }
        lastRechoke = now
        return decision
    }

    /// What a rechoke makes of a peer.
    private enum Role {
        case choked, regular, optimistic
    }

    /// The peers with each key once (the first listing), without hashing when the keys ascend.
    private static func unique(_ peers: [PeerStats]) -> [PeerStats] {
        if zip(peers, peers.dropFirst()).allSatisfy({ $0.key < $1.key }) { return peers }
        var seen = Set<PeerKey>(minimumCapacity: peers.count)
        return peers.filter { seen.insert($0.key).inserted }
    }

    // MARK: - Ranking

    /// Tit-for-tat: interested peers that are not snubbing us, fastest to us first (indices into `peers`).
    /// Among equally fast ones (all at 0 at the start, or peers with nothing we want): peers unchoked now
    /// first (a slot that keeps its peer keeps its request pipeline: rotating them lengthened the lab's
    /// swarms by 7%), then the peer that gave us the most beyond what it got, so that a free-rider, which
    /// only takes, comes last (a credit, as in eMule), then chance.
    private func rankForTrading(_ peers: [PeerStats], roles: [Role], now: Instant, tieBreaks: [UInt64]) -> [Int] {
        peers.indices.filter {
            peers[$0].isInterested && roles[$0] == .choked && !isSnubbed(peers[$0], now: now)
        }.sorted { i, j in
            let (a, b) = (peers[i], peers[j])
            if a.downloadRate != b.downloadRate { return a.downloadRate > b.downloadRate }
            if a.isChoked != b.isChoked { return !a.isChoked }
            if a.balance != b.balance { return a.balance > b.balance }
            return (tieBreaks[i], a.key) < (tieBreaks[j], b.key)
        }
    }

    /// Round robin: interested peers within their share first, unchoked before choked; the unchoked by upload
    /// rate, the choked by how long they have waited (indices into `peers`).
    private func rankForSeeding(_ peers: [PeerStats], roles: [Role], now: Instant, tieBreaks: [UInt64]) -> [Int] {
        struct Rank {
            var index: Int
            var hadShare: Bool
            var lastUnchoke: Instant
        }
        let ranks = peers.indices.compactMap { index -> Rank? in
            let peer = peers[index]
            guard peer.isInterested, roles[index] == .choked else { return nil }
            let history = history[peer.key]
            var hadShare = false
            if let since = peer.unchokedSince {
                let sent = peer.bytesSent - (history?.sentAtUnchoke ?? peer.bytesSent)
                hadShare = sent >= configuration.seedingQuota || now - since >= configuration.seedingTimeQuota
            }
            return Rank(index: index, hadShare: hadShare, lastUnchoke: history?.unchokedAt ?? Instant(nanoseconds: .min))
        }
        return ranks.sorted { x, y in
            let (a, b) = (peers[x.index], peers[y.index])
            if x.hadShare != y.hadShare { return !x.hadShare }
            if a.isChoked != b.isChoked { return !a.isChoked }
            if !a.isChoked, a.uploadRate != b.uploadRate { return a.uploadRate > b.uploadRate }
            if a.isChoked, x.lastUnchoke != y.lastUnchoke { return x.lastUnchoke < y.lastUnchoke }
            return (tieBreaks[x.index], a.key) < (tieBreaks[y.index], b.key)
        }.map(\.index)
    }
}
