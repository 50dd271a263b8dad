import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("UDP tracker exchange (BEP 15 client)")
struct UDPTrackerExchangeTests {
    static let request = AnnounceRequest(
        infoHash: TrackerFixtures.infoHash, peerID: TrackerFixtures.peerID, port: 6881, left: 100, event: .started, key: 1)

    /// The kind of packet and its transaction id.
    private func parse(_ outcome: UDPTrackerExchange.Outcome) throws -> UDPTrackerRequest {
        guard case .send(let bytes) = outcome else { throw TrackerError(.badRequest("not a send: \(outcome)")) }
        return try UDPTrackerRequest(decoding: bytes)
    }

    private func isConnect(_ request: UDPTrackerRequest) -> Bool {
        if case .connect = request { return true }
        return false
    }

    @Test func connectTimesOutOn15TimesTwoToTheN() throws {
        var random = SeededGenerator(seed: 1)
        var exchange = UDPTrackerExchange()
        var sends: [Double] = []
        var outcome = exchange.begin(.announce(Self.request), now: .zero, random: &random)
        #expect(isConnect(try parse(outcome)))
        sends.append(0)
        // Time advances straight to each deadline; every send is a connect.
        while sends.count < 10, let deadline = exchange.deadline {
            outcome = exchange.timedOut(now: deadline, random: &random)
            #expect(isConnect(try parse(outcome)))
            sends.append(Double(deadline.nanoseconds) / 1e9)
        }
        // 15, 30, 60, ... up to 3840 s, then 3840 s again (n stops at 8).
        #expect(sends == [0, 15, 45, 105, 225, 465, 945, 1905, 3825, 7665])
    }

    @Test func announceTimesOutThenReconnectsWhenTheIDExpired() throws {
        var random = SeededGenerator(seed: 2)
        var exchange = UDPTrackerExchange()
        let connect = try parse(exchange.begin(.announce(Self.request), now: .zero, random: &random))
        let answer = UDPTrackerResponse.connect(transactionID: connect.transactionID, connectionID: 77).encoded
        let announce = try parse(exchange.received(answer, ipv6: false, now: .seconds(1), random: &random))
        guard case .announce(77, let transaction, _) = announce else {
            Issue.record("expected an announce with the connection id, got \(announce)")
            return
        }
        #expect(transaction != connect.transactionID)
        var log: [(Double, Bool)] = []
        for _ in 0..<4 {
            let deadline = try #require(exchange.deadline)
            log.append((Double(deadline.nanoseconds) / 1e9, isConnect(try parse(exchange.timedOut(now: deadline, random: &random)))))
        }
        // BEP 15's example: announces at +15 and +30; the id (got at 1) expired at 61, so a connect at 106,
        // then 226.
        #expect(log.map(\.0) == [16, 46, 106, 226])
        #expect(log.map(\.1) == [false, false, true, true])
    }

    @Test func ignoresOtherTransactionsAndAnswersOfTheWrongKind() throws {
        var random = SeededGenerator(seed: 3)
        var exchange = UDPTrackerExchange()
        let connect = try parse(exchange.begin(.announce(Self.request), now: .zero, random: &random))
        let wrongID = UDPTrackerResponse.connect(transactionID: connect.transactionID &+ 1, connectionID: 5).encoded
        #expect(exchange.received(wrongID, ipv6: false, now: .seconds(1), random: &random) == .ignored)
        let wrongKind = UDPTrackerResponse.announce(transactionID: connect.transactionID, interval: 1, leechers: 0, seeders: 0, peers: []).encoded
        #expect(exchange.received(wrongKind, ipv6: false, now: .seconds(1), random: &random) == .ignored)
        #expect(exchange.received([1, 2, 3], ipv6: false, now: .seconds(1), random: &random) == .ignored)
        #expect(exchange.isBusy)
    }

    @Test func deliversTheAnnounceAndReusesTheConnectionForAMinute() throws {
        var random = SeededGenerator(seed: 4)
        var exchange = UDPTrackerExchange()
        let connect = try parse(exchange.begin(.announce(Self.request), now: .zero, random: &random))
        let announce = try parse(
            exchange.received(UDPTrackerResponse.connect(transactionID: connect.transactionID, connectionID: 9).encoded, ipv6: true, now: .zero, random: &random))
        let peers = [PeerAddress("[2001:db8::7]:6881")!]
        let answer = UDPTrackerResponse.announce(transactionID: announce.transactionID, interval: 900, leechers: 4, seeders: 5, peers: peers).encoded
        #expect(exchange.received(answer, ipv6: true, now: .seconds(1), random: &random)
            == .announced(AnnounceResponse(interval: 900, seeders: 5, leechers: 4, peers: peers)))
        #expect(!exchange.isBusy)
        // Within the minute: straight to the request.
        let scrape = try parse(exchange.begin(.scrape([TrackerFixtures.infoHash]), now: .seconds(59), random: &random))
        guard case .scrape(9, _, [TrackerFixtures.infoHash]) = scrape else {
            Issue.record("expected a scrape on the same connection, got \(scrape)")
            return
        }
        let counts = [ScrapeCounts(seeders: 1, completed: 2, leechers: 3)]
        #expect(exchange.received(UDPTrackerResponse.scrape(transactionID: scrape.transactionID, counts: counts).encoded, ipv6: true, now: .seconds(60), random: &random)
            == .scraped(counts))
        // After it: a connect first.
        #expect(isConnect(try parse(exchange.begin(.announce(Self.request), now: .seconds(61), random: &random))))
    }

    @Test func anErrorPacketIsARefusal() throws {
        var random = SeededGenerator(seed: 5)
        var exchange = UDPTrackerExchange()
        let connect = try parse(exchange.begin(.announce(Self.request), now: .zero, random: &random))
        let error = UDPTrackerResponse.error(transactionID: connect.transactionID, message: "go away").encoded
        #expect(exchange.received(error, ipv6: false, now: .seconds(1), random: &random)
            == .refused(TrackerError(.refused("go away", retryIn: nil))))
        #expect(!exchange.isBusy)
    }

    @Test func aCancelledRequestIgnoresItsLateAnswer() throws {
        var random = SeededGenerator(seed: 6)
        var exchange = UDPTrackerExchange()
        let connect = try parse(exchange.begin(.announce(Self.request), now: .zero, random: &random))
        exchange.cancel()
        #expect(exchange.received(UDPTrackerResponse.connect(transactionID: connect.transactionID, connectionID: 1).encoded, ipv6: false, now: .seconds(1), random: &random) == .ignored)
        #expect(exchange.timedOut(now: .seconds(100), random: &random) == .ignored)
    }
}
