import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("Swarm registry")
struct SwarmRegistryTests {
    static func registry(
        interval: Int = 100, allowList: Set<Bytes20>? = nil, maxPeers: Int = 1000, maxSwarms: Int = 1000
    ) -> SwarmRegistry {
        SwarmRegistry(
            configuration: .init(interval: interval, allowList: allowList, maxSwarms: maxSwarms, maxPeers: maxPeers, seed: 42),
            now: .zero)
    }

    static func announce(
        _ registry: inout SwarmRegistry, _ host: TrackerHost, port: UInt16 = 6881, event: AnnounceEvent = .none,
        left: Int64 = 10, numWant: Int? = nil, hash: Bytes20 = TrackerFixtures.infoHash, at now: Instant = .zero
    ) throws -> (counts: ScrapeCounts, peers: [PeerAddress]) {
        var bytes: [UInt8] = []
        let counts = try registry.announce(
            .init(infoHash: hash, host: host, port: port, event: event, left: left, numWant: numWant), now: now, peers: &bytes)
        return (counts, TrackerFixtures.peers(bytes, ipv6: host.isIPv6))
    }

    static func host(_ index: Int) -> TrackerHost { .ipv4(0x0A00_0000 | UInt32(index)) }

    @Test func countsSeedersLeechersAndCompletedDownloads() throws {
        var registry = Self.registry()
        _ = try Self.announce(&registry, Self.host(1), event: .started, left: 0)
        _ = try Self.announce(&registry, Self.host(2), event: .started)
        let third = try Self.announce(&registry, Self.host(3), event: .started)
        #expect(third.counts == ScrapeCounts(seeders: 1, completed: 0, leechers: 2))
        #expect(third.peers.count == 2)
        // Host 2 completes; a repeated completed is not counted twice.
        #expect(try Self.announce(&registry, Self.host(2), event: .completed, left: 0).counts == ScrapeCounts(seeders: 2, completed: 1, leechers: 1))
        #expect(try Self.announce(&registry, Self.host(2), event: .completed, left: 0).counts.completed == 1)
        // A stopped peer leaves and gets no peers.
        let stopped = try Self.announce(&registry, Self.host(3), event: .stopped)
        #expect(stopped.counts == ScrapeCounts(seeders: 2, completed: 1, leechers: 0) && stopped.peers.isEmpty)
        #expect(registry.counts(TrackerFixtures.infoHash) == ScrapeCounts(seeders: 2, completed: 1, leechers: 0))
        #expect(registry.counts(TrackerFixtures.otherHash) == nil)
        #expect(registry.peerCount == 2)
    }

    @Test func givesOthersNeverTheAskerAndNoSeedsToASeed() throws {
        var registry = Self.registry()
        for index in 0..<10 { _ = try Self.announce(&registry, Self.host(index), left: index < 5 ? 0 : 1) }
        let leecher = try Self.announce(&registry, Self.host(7), left: 1)
        #expect(leecher.peers.count == 9 && !leecher.peers.contains(Self.host(7).peerAddress(port: 6881)))
        let seed = try Self.announce(&registry, Self.host(0), left: 0)
        #expect(Set(seed.peers) == Set((5..<10).map { Self.host($0).peerAddress(port: 6881) }))
        // Same address, another port: another peer.
        #expect(try Self.announce(&registry, Self.host(7), port: 1, left: 1).peers.contains(Self.host(7).peerAddress(port: 6881)))
    }

    /// A seed asking for exactly as many peers as there are leechers (the asker, a seed itself, must not
    /// be left out twice from the count, or one peer too many comes back).
    @Test func aSeedGetsAtMostWhatItAskedFor() throws {
        for leechers in 1...6 {
            for seeds in 1...4 {
                var registry = Self.registry()
                for index in 0..<leechers { _ = try Self.announce(&registry, Self.host(index), left: 1) }
                for index in 0..<seeds { _ = try Self.announce(&registry, Self.host(100 + index), left: 0) }
                for want in 0...(leechers + 1) {
                    let answer = try Self.announce(&registry, Self.host(100), left: 0, numWant: want)
                    #expect(answer.peers.count == min(want, leechers), "\(leechers) leechers, \(seeds) seeds, numwant \(want)")
                }
            }
        }
    }

    @Test func numWantIsDefaultedAndCapped() throws {
        var registry = Self.registry()
        for index in 0..<300 { _ = try Self.announce(&registry, Self.host(index), numWant: 0) }
        #expect(try Self.announce(&registry, Self.host(1000)).peers.count == 50)
        #expect(try Self.announce(&registry, Self.host(1000), numWant: -1).peers.count == 50)
        #expect(try Self.announce(&registry, Self.host(1000), numWant: 7).peers.count == 7)
        #expect(try Self.announce(&registry, Self.host(1000), numWant: Int.max).peers.count == 200)
        var bytes: [UInt8] = []
        _ = try registry.announce(
            .init(infoHash: TrackerFixtures.infoHash, host: Self.host(1000), port: 6881, event: .none, left: 1, numWant: 500),
            now: .zero, limit: 79, peers: &bytes)
        #expect(bytes.count == 79 * 6)
    }

    @Test func keepsIPv4AndIPv6Apart() throws {
        var registry = Self.registry()
        _ = try Self.announce(&registry, TrackerFixtures.v4("10.0.0.1"))
        _ = try Self.announce(&registry, TrackerFixtures.v6("2001:db8::1"))
        _ = try Self.announce(&registry, TrackerFixtures.v6("2001:db8::2"))
        #expect(try Self.announce(&registry, TrackerFixtures.v4("10.0.0.2")).peers == [PeerAddress("10.0.0.1:6881")!])
        #expect(try Self.announce(&registry, TrackerFixtures.v6("2001:db8::3")).peers.count == 2)
        // Counts cover both families.
        #expect(registry.counts(TrackerFixtures.infoHash)?.leechers == 5)
        // An IPv4-mapped address is IPv4.
        #expect(TrackerFixtures.v6("::ffff:10.0.0.3") == .ipv4(0x0A00_0003))
    }

    @Test func peersExpireAfterMissedAnnouncesAndEmptySwarmsGo() throws {
        // Timeout 2·100 + 60 = 260 s; expiry epochs of ⌈260 / 8⌉ = 33 s: a peer goes within 33 s after its timeout.
        var registry = Self.registry(interval: 100)
        #expect(registry.epochLength == 33)
        _ = try Self.announce(&registry, Self.host(1), at: .zero)
        _ = try Self.announce(&registry, Self.host(2), at: .seconds(200))
        _ = try Self.announce(&registry, Self.host(3), hash: TrackerFixtures.otherHash, at: .zero)
        #expect(registry.sweep(now: .seconds(259), budget: .max) == 0)
        #expect(registry.sweep(now: .seconds(260 + 33), budget: .max) == 2)
        #expect(registry.counts(TrackerFixtures.infoHash)?.leechers == 1)
        #expect(registry.swarmCount == 2, "an empty swarm stays a while")
        _ = try Self.announce(&registry, Self.host(2), at: .seconds(450))
        _ = registry.sweep(now: .seconds(293 + 260), budget: .max)
        #expect(registry.swarmCount == 1 && registry.counts(TrackerFixtures.otherHash) == nil)
        #expect(registry.peerCount == 1)
    }

    @Test func sweepsABoundedAmountAtATime() throws {
        var registry = Self.registry(maxPeers: 100_000)
        for swarm in 0..<100 {
            for peer in 0..<10 { _ = try Self.announce(&registry, Self.host(peer), numWant: 0, hash: TrackerFixtures.hash(swarm)) }
        }
        let late = Instant.seconds(400)
        var rounds = 0
        while registry.peerCount > 0 && rounds < 1000 {
            let removed = registry.sweep(now: late, budget: 50)
            #expect(removed <= 60)
            rounds += 1
        }
        #expect(registry.peerCount == 0 && rounds >= 20)
    }

    @Test func refusesInfoHashesOutsideTheAllowList() throws {
        var registry = Self.registry(allowList: [TrackerFixtures.infoHash])
        _ = try Self.announce(&registry, Self.host(1))
        #expect(throws: SwarmRegistry.Refusal.notAllowed) { try Self.announce(&registry, Self.host(1), hash: TrackerFixtures.otherHash) }
        #expect(registry.swarmCount == 1)
    }

    @Test func refusesNewPeersAndSwarmsPastItsLimits() throws {
        var registry = Self.registry(maxPeers: 3, maxSwarms: 2)
        for index in 0..<3 { _ = try Self.announce(&registry, Self.host(index)) }
        #expect(throws: SwarmRegistry.Refusal.full) { try Self.announce(&registry, Self.host(9)) }
        _ = try Self.announce(&registry, Self.host(1), event: .stopped)
        _ = try Self.announce(&registry, Self.host(1), hash: TrackerFixtures.otherHash)
        #expect(throws: SwarmRegistry.Refusal.full) { try Self.announce(&registry, Self.host(1), hash: TrackerFixtures.hash(5)) }
        // A stopped announce for an unknown swarm creates nothing.
        _ = try Self.announce(&registry, Self.host(1), event: .stopped, hash: TrackerFixtures.hash(6))
        #expect(registry.swarmCount == 2)
    }

    @Test func aSnapshotKeepsSwarmsPeersAndCounts() throws {
        var registry = Self.registry(interval: 100)
        _ = try Self.announce(&registry, Self.host(1), event: .completed, left: 0)
        _ = try Self.announce(&registry, Self.host(2), at: .seconds(100))
        _ = try Self.announce(&registry, TrackerFixtures.v6("2001:db8::9"), hash: TrackerFixtures.otherHash, at: .seconds(50))
        let bytes = registry.snapshot(now: .seconds(150))
        // Restored by a tracker that started later: times left are kept.
        var restored = try SwarmRegistry(restoring: bytes, configuration: Self.registry(interval: 100).configuration, now: .seconds(5000))
        #expect(restored.counts(TrackerFixtures.infoHash) == ScrapeCounts(seeders: 1, completed: 1, leechers: 1))
        #expect(restored.counts(TrackerFixtures.otherHash) == ScrapeCounts(seeders: 0, completed: 0, leechers: 1))
        #expect(restored.peerCount == 3)
        let again = try SwarmRegistry(
            restoring: restored.snapshot(now: .seconds(5000)), configuration: restored.configuration, now: .seconds(9000))
        #expect(again.peerCount == 3 && again.counts(TrackerFixtures.infoHash) == restored.counts(TrackerFixtures.infoHash))
        // Host 1 had 260 - 150 = 110 s left, and goes within an expiry epoch (33 s) after that.
        #expect(restored.sweep(now: .seconds(5109), budget: .max) == 0)
        #expect(restored.sweep(now: .seconds(5143), budget: .max) == 1)
        #expect(try Self.announce(&restored, Self.host(3), at: .seconds(5143)).peers == [Self.host(2).peerAddress(port: 6881)])
    }

    @Test func aSnapshotIsReadWithTheNewAllowListAndRefusedWhenBroken() throws {
        var registry = Self.registry()
        _ = try Self.announce(&registry, Self.host(1))
        _ = try Self.announce(&registry, Self.host(1), hash: TrackerFixtures.otherHash)
        let bytes = registry.snapshot(now: .zero)
        let allowOne = Self.registry(allowList: [TrackerFixtures.otherHash]).configuration
        #expect(try SwarmRegistry(restoring: bytes, configuration: allowOne, now: .zero).swarmCount == 1)
        for prefix in TrackerFixtures.prefixes(bytes) {
            #expect(throws: TrackerError.self) { try SwarmRegistry(restoring: prefix, configuration: allowOne, now: .zero) }
        }
        #expect(throws: TrackerError.self) { try SwarmRegistry(restoring: bytes + [0], configuration: allowOne, now: .zero) }
        var twice = bytes
        twice[15] = 3  // three swarms claimed, the third missing
        #expect(throws: TrackerError.self) { try SwarmRegistry(restoring: twice, configuration: allowOne, now: .zero) }
        var random = SeededGenerator(seed: 1)
        for length in 0..<200 {
            let garbage = Array("SHOALTRK".utf8) + [0, 0, 0, 1] + (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? SwarmRegistry(restoring: garbage, configuration: allowOne, now: .zero)
        }
    }

    /// Memory per peer in a registry of a million peers in 10,000 swarms, as `bench/tracker` fills it
    /// (measured from capacities): 7-byte records, growth room of an eighth at most, the swarms' own bytes.
    @Test func aMillionPeersTakeAboutNineBytesEach() throws {
        var registry = SwarmRegistry(configuration: .init(seed: 1), now: .zero)
        var random = SeededGenerator(seed: 9)
        var bytes: [UInt8] = []
        for index in 0..<1_000_000 {
            let swarm = index % 10_000
            let host = TrackerHost.ipv4(UInt32(truncatingIfNeeded: random.next()))
            _ = try registry.announce(
                .init(infoHash: TrackerFixtures.hash(swarm), host: host, port: 6881, event: .started, left: 1, numWant: 0),
                now: .zero, peers: &bytes)
        }
        #expect(registry.peerCount == 1_000_000)
        let perPeer = Double(registry.bytesAllocated) / 1_000_000
        #expect(perPeer < 10.5, "\(perPeer) bytes per peer")
    }
}
