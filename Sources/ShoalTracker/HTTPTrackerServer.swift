import ShoalBencode
import ShoalCore

/// The server side of HTTP announces and scrapes (BEP 3, 7, 23, 48) as a pure core: the raw query and
/// the client's address in, the bencoded body out, the registry updated. Every answer is HTTP 200 with a
/// bencoded body; a request that cannot be served gets BEP 3's `failure reason`.
public struct HTTPTrackerServer: Sendable {
    /// A full scrape (no `info_hash`) lists every swarm: answered only while there are at most this many
    /// (0: never), so that it cannot be used to make the server work for long.
    public var maxFullScrape: Int
    /// Peers in one answer at most (the registry's `maxNumWant` also applies).
    public var maxPeers: Int
    /// Reused for the peers of each answer, so that an announce allocates only its body.
    private var scratch: [UInt8] = []

    public init(maxFullScrape: Int = 10_000, maxPeers: Int = 200) {
        self.maxFullScrape = maxFullScrape
        self.maxPeers = maxPeers
    }

    /// Answers an announce from `source`; the body goes to `body`.
    public mutating func announce(
        query: UnsafeRawBufferPointer, from source: TrackerHost, now: Instant, registry: inout SwarmRegistry,
        body: inout [UInt8]
    ) {
        let request: HTTPAnnounceQuery
        do { request = try HTTPAnnounceQuery(query: query) } catch {
            TrackerBencode.writeFailure(error.description, into: &body)
            return
        }
        scratch.removeAll(keepingCapacity: true)
        let counts: ScrapeCounts
        do {
            counts = try registry.announce(
                SwarmRegistry.Announce(
                    infoHash: request.infoHash, host: source, port: request.port, event: request.event,
                    left: request.left, numWant: request.numWant),
                now: now, limit: maxPeers, peers: &scratch)
        } catch {
            TrackerBencode.writeFailure(error.description, into: &body)
            return
        }
        let interval = Int64(registry.configuration.interval)
        let minInterval = Int64(registry.configuration.minInterval)
        guard request.compact else {
            writeDictionaryPeers(counts: counts, interval: interval, minInterval: minInterval, ipv6: source.isIPv6, body: &body)
            return
        }
        // IPv4 clients get `peers`; IPv6 clients `peers6` (BEP 7) and an empty `peers` for clients that
        // expect the key.
        let ipv6 = source.isIPv6
        TrackerBencode.writeAnnounce(
            seeders: counts.seeders, downloaded: counts.completed, leechers: counts.leechers, interval: interval,
            minInterval: minInterval, peers: ipv6 ? [] : scratch[...], peers6: ipv6 ? scratch[...] : nil, trackerID: nil,
            warning: nil, into: &body)
    }

    /// BEP 3's original form: `peers` as a list of dictionaries with `ip` and `port` (no `peer id`: the
    /// registry does not keep them, as `no_peer_id` allows).
    private func writeDictionaryPeers(
        counts: ScrapeCounts, interval: Int64, minInterval: Int64, ipv6: Bool, body: inout [UInt8]
    ) {
        var peers: [BencodeValue] = []
        var start = 0
        let stride = ipv6 ? 18 : 6
        while start + stride <= scratch.count {
            if let address = PeerAddress(compact: scratch[start..<(start + stride)]) {
                peers.append(["ip": .text(address.hostText), "port": .integer(Int64(address.port))])
            }
            start += stride
        }
        let value: BencodeValue = [
            "complete": .integer(counts.seeders), "downloaded": .integer(counts.completed),
            "incomplete": .integer(counts.leechers), "interval": .integer(interval),
            "min interval": .integer(minInterval), "peers": .list(peers),
        ]
        BencodeEncoder.append(value, to: &body)
    }

    /// Answers a scrape: the counts of each info-hash asked for (zeros for unknown ones), or of every
    /// swarm when none is named (up to `maxFullScrape` swarms).
    public func scrape(query: UnsafeRawBufferPointer, registry: SwarmRegistry, body: inout [UInt8]) {
        let request: HTTPScrapeQuery
        do { request = try HTTPScrapeQuery(query: query) } catch {
            TrackerBencode.writeFailure(error.description, into: &body)
            return
        }
        let minRequestInterval = Int64(registry.configuration.minInterval)
        if request.infoHashes.isEmpty {
            guard registry.swarmCount <= maxFullScrape else {
                TrackerBencode.writeFailure("full scrape is not offered here: name an info_hash", into: &body)
                return
            }
            TrackerBencode.writeScrape(registry.allCounts(), minRequestInterval: minRequestInterval, into: &body)
            return
        }
        let zero = ScrapeCounts(seeders: 0, completed: 0, leechers: 0)
        let files = request.infoHashes.sorted().map { ($0, registry.counts($0) ?? zero) }
        TrackerBencode.writeScrape(files, minRequestInterval: minRequestInterval, into: &body)
    }
}
