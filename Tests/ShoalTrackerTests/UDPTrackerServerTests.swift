import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("UDP tracker server (BEP 15)")
struct UDPTrackerServerTests {
    var server = UDPTrackerServer(secret: (11, 22), now: .zero)
    var registry = SwarmRegistry(configuration: .init(interval: 900, seed: 3), now: .zero)
    let client = TrackerFixtures.v4("10.1.2.3")

    /// The answer to `packet` from `source`, nil when dropped.
    mutating func send(_ packet: [UInt8], from source: TrackerHost? = nil, at now: Instant = .zero) -> [UInt8]? {
        var reply: [UInt8] = []
        let answered = packet.withUnsafeBytes { server.received($0, from: source ?? client, now: now, registry: &registry, reply: &reply) }
        return answered ? reply : nil
    }

    mutating func connectionID(from source: TrackerHost? = nil, at now: Instant = .zero) throws -> UInt64 {
        let answer = try #require(send(UDPTrackerRequest.connect(transactionID: 7).encoded, from: source, at: now))
        guard case .connect(7, let id) = try UDPTrackerResponse(decoding: answer, ipv6: false) else {
            throw TrackerError(.badRequest("not a connect answer"))
        }
        return id
    }

    static func announce(
        _ id: UInt64, port: UInt16 = 6881, left: Int64 = 5, numWant: Int32 = -1, hash: Bytes20 = TrackerFixtures.infoHash
    ) -> [UInt8] {
        UDPTrackerRequest.announce(
            connectionID: id, transactionID: 9,
            UDPAnnounce(infoHash: hash, peerID: TrackerFixtures.peerID, downloaded: 0, left: left, uploaded: 0, event: .started, key: 1, numWant: numWant, port: port)
        ).encoded
    }

    @Test mutating func announcesWithAConnectionIDItGave() throws {
        let other = TrackerFixtures.v4("10.9.9.9")
        let otherID = try connectionID(from: other)
        _ = try #require(send(Self.announce(otherID, left: 0), from: other))
        let id = try connectionID()
        let answer = try #require(send(Self.announce(id)))
        #expect(try UDPTrackerResponse(decoding: answer, ipv6: false)
            == .announce(transactionID: 9, interval: 900, leechers: 1, seeders: 1, peers: [PeerAddress("10.9.9.9:6881")!]))
        let scrape = UDPTrackerRequest.scrape(connectionID: id, transactionID: 3, infoHashes: [TrackerFixtures.infoHash, TrackerFixtures.otherHash]).encoded
        #expect(try UDPTrackerResponse(decoding: try #require(send(scrape)), ipv6: false)
            == .scrape(transactionID: 3, counts: [.init(seeders: 1, completed: 0, leechers: 1), .init(seeders: 0, completed: 0, leechers: 0)]))
        #expect(server.counters.announces == 2 && server.counters.connects == 2 && server.counters.scrapes == 1)
    }

    @Test mutating func connectionIDsLastTwoToThreeMinutesAndOnlyForTheirAddress() throws {
        let id = try connectionID(at: .seconds(59))
        #expect(send(Self.announce(id), at: .seconds(179)) != nil, "two minutes after it was given")
        #expect(send(Self.announce(id), at: .seconds(180)) == nil, "three windows later")
        #expect(send(Self.announce(id), from: TrackerFixtures.v4("10.1.2.4"), at: .seconds(60)) == nil, "another address")
        #expect(send(Self.announce(id ^ 1), at: .seconds(60)) == nil, "a forged id")
        let later = try connectionID(at: .seconds(61))
        #expect(send(Self.announce(later), at: .seconds(30)) == nil, "an id from the future")
        let v6 = TrackerFixtures.v6("2001:db8::1")
        let id6 = try connectionID(from: v6)
        let answer = try #require(send(Self.announce(id6), from: v6))
        #expect(answer.count == 20, "an IPv6 client alone in the swarm")
        #expect(server.counters.dropped == 4)
    }

    @Test mutating func dropsGarbageAndAnswersBadRequestsWithAnError() throws {
        #expect(send([]) == nil && send([1, 2, 3]) == nil)
        var connect = UDPTrackerRequest.connect(transactionID: 1).encoded
        connect[7] ^= 1
        #expect(send(connect) == nil, "no protocol id")
        let id = try connectionID()
        #expect(try UDPTrackerResponse(decoding: try #require(send(Array(Self.announce(id).prefix(60)))), ipv6: false)
            == .error(transactionID: 9, message: "announce of 60 bytes, 98 needed"))
        #expect(try UDPTrackerResponse(decoding: try #require(send(Self.announce(id, port: 0))), ipv6: false)
            == .error(transactionID: 9, message: "invalid port 0"))
        var unknown = Self.announce(id)
        unknown[11] = 9
        #expect(try UDPTrackerResponse(decoding: try #require(send(unknown)), ipv6: false) == .error(transactionID: 9, message: "unknown action 9"))
        var random = SeededGenerator(seed: 4)
        for length in 0..<500 {
            var garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            if length >= 16 && length % 3 == 0 { garbage.replaceSubrange(0..<8, with: withUnsafeBytes(of: id.bigEndian, Array.init)) }
            _ = send(garbage)
        }
        #expect(registry.peerCount == 0)
    }

    @Test mutating func refusesAnInfoHashOutsideTheAllowList() throws {
        registry = SwarmRegistry(configuration: .init(allowList: [TrackerFixtures.otherHash], seed: 1), now: .zero)
        let id = try connectionID()
        #expect(try UDPTrackerResponse(decoding: try #require(send(Self.announce(id))), ipv6: false)
            == .error(transactionID: 9, message: SwarmRegistry.Refusal.notAllowed.description))
    }

    @Test mutating func limitsConnectsPerAddress() throws {
        server = UDPTrackerServer(configuration: .init(rateLimit: .init(burst: 5, perSecond: 1)), secret: (1, 2), now: .zero)
        let connect = UDPTrackerRequest.connect(transactionID: 1).encoded
        #expect((0..<10).filter { _ in send(connect) != nil }.count == 5)
        #expect(send(connect, from: TrackerFixtures.v4("10.1.2.4")) != nil, "another address has its own budget")
        #expect(send(connect, at: .seconds(2)) != nil, "tokens come back with time")
        #expect(server.counters.rateLimited == 5)
    }

    @Test mutating func givesAtMostAnMTUOfPeers() throws {
        for index in 0..<300 {
            let source = TrackerHost.ipv6(high: 0x2001_0db8_0000_0000, low: UInt64(index))
            _ = send(Self.announce(try connectionID(from: source)), from: source)
            let source4 = TrackerHost.ipv4(UInt32(index))
            _ = send(Self.announce(try connectionID(from: source4)), from: source4)
        }
        let v6 = TrackerHost.ipv6(high: 0x2001_0db8_0000_0000, low: 999)
        #expect(try #require(send(Self.announce(try connectionID(from: v6), numWant: 500), from: v6)).count == 20 + 79 * 18)
        let v4 = TrackerHost.ipv4(999)
        #expect(try #require(send(Self.announce(try connectionID(from: v4), numWant: 500), from: v4)).count == 20 + 200 * 6)
        #expect(try #require(send(Self.announce(try connectionID(from: v4)), from: v4)).count == 20 + 50 * 6, "-1: the default")
    }
}
