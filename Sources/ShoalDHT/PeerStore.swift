import ShoalCore

/// The peers other nodes announced to us (BEP 5, "announce_peer"), per info-hash, each kept until it expires
/// unless announced again. Bounded per info-hash, in info-hashes and in total, so announces cost bounded
/// memory whatever their source.
public struct PeerStore: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// How long an announce is kept (trackers and libtorrent use about 30 minutes).
        public var expiry: Interval
        /// The most peers per info-hash; the oldest gives way to a newcomer.
        public var maxPeersPerInfoHash: Int
        /// The most info-hashes; a new one displaces the one with fewest peers.
        public var maxInfoHashes: Int
        /// The most peers in all; beyond it new peers are refused until some expire.
        public var maxPeers: Int

        public init(
            expiry: Interval = .seconds(30 * 60), maxPeersPerInfoHash: Int = 200, maxInfoHashes: Int = 2000,
            maxPeers: Int = 50_000
        ) {
            self.expiry = expiry
            self.maxPeersPerInfoHash = maxPeersPerInfoHash
            self.maxInfoHashes = maxInfoHashes
            self.maxPeers = maxPeers
        }
    }

    struct Entry: Sendable {
        var address: NodeAddress
        var announced: Instant
    }

    public let configuration: Configuration
    private var torrents: [NodeID: [Entry]] = [:]
    /// Peers stored in all.
    public private(set) var count = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public var infoHashCount: Int { torrents.count }

    /// Records that `peer` announced `infoHash` at `now` (or refreshes its announce).
    public mutating func announce(_ peer: NodeAddress, for infoHash: NodeID, now: Instant) {
        if var entries = torrents[infoHash] {
            if let index = entries.firstIndex(where: { $0.address == peer }) {
                entries[index].announced = now
            } else if entries.count >= configuration.maxPeersPerInfoHash {
                let oldest = entries.indices.min { entries[$0].announced < entries[$1].announced }!
                entries[oldest] = Entry(address: peer, announced: now)
            } else {
                guard count < configuration.maxPeers else { return }
                entries.append(Entry(address: peer, announced: now))
                count += 1
            }
            torrents[infoHash] = entries
            return
        }
        guard configuration.maxPeersPerInfoHash > 0, configuration.maxInfoHashes > 0 else { return }
        if torrents.count >= configuration.maxInfoHashes {
            let smallest = torrents.min { $0.value.count < $1.value.count }!
            count -= smallest.value.count
            torrents[smallest.key] = nil
        }
        guard count < configuration.maxPeers else { return }
        torrents[infoHash] = [Entry(address: peer, announced: now)]
        count += 1
    }

    /// Up to `limit` peers of `family` stored for `infoHash`, a random choice when there are more.
    public func peers(
        for infoHash: NodeID, family: NodeAddress.Family, limit: Int, using random: inout some RandomNumberGenerator
    ) -> [NodeAddress] {
        guard let entries = torrents[infoHash] else { return [] }
        var matching = entries.compactMap { $0.address.family == family ? $0.address : nil }
        if matching.count > limit { matching.shuffle(using: &random) }
        return Array(matching.prefix(limit))
    }

    /// Forgets announces older than the expiry.
    public mutating func expire(now: Instant) {
        for (infoHash, entries) in torrents {
            let kept = entries.filter { now - $0.announced < configuration.expiry }
            guard kept.count != entries.count else { continue }
            count -= entries.count - kept.count
            torrents[infoHash] = kept.isEmpty ? nil : kept
        }
    }
}
