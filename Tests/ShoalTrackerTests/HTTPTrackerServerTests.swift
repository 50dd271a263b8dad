import ShoalBencode
import ShoalCore
import Testing

@testable import ShoalTracker

@Suite("HTTP tracker server")
struct HTTPTrackerServerTests {
    var server = HTTPTrackerServer()
    var registry = SwarmRegistry(configuration: .init(interval: 600, seed: 5), now: .zero)

    mutating func announce(_ query: String, from source: TrackerHost) -> [UInt8] {
        var body: [UInt8] = []
        Array(query.utf8).withUnsafeBytes { server.announce(query: $0, from: source, now: .zero, registry: &registry, body: &body) }
        return body
    }

    func scrape(_ query: String) -> [UInt8] {
        var body: [UInt8] = []
        Array(query.utf8).withUnsafeBytes { server.scrape(query: $0, registry: registry, body: &body) }
        return body
    }

    static func query(port: Int, left: Int = 1, extra: String = "") -> String {
        AnnounceRequest(infoHash: TrackerFixtures.infoHash, peerID: TrackerFixtures.peerID, port: UInt16(port), left: Int64(left), event: .started)
            .httpQuery + extra
    }

    @Test mutating func answersCompactPeersAndCounts() throws {
        _ = announce(Self.query(port: 1, left: 0), from: TrackerFixtures.v4("10.0.0.1"))
        let body = announce(Self.query(port: 2), from: TrackerFixtures.v4("10.0.0.2"))
        let response = try AnnounceResponse(http: body)
        #expect(response == AnnounceResponse(interval: 600, minInterval: 300, seeders: 1, leechers: 1, downloaded: 0, peers: [PeerAddress("10.0.0.1:1")!]))
        #expect(try BencodeDocument(decoding: body).unsortedKeyOffsets.isEmpty)
    }

    @Test mutating func answersIPv6ClientsWithPeers6() throws {
        _ = announce(Self.query(port: 1), from: TrackerFixtures.v6("2001:db8::1"))
        _ = announce(Self.query(port: 1), from: TrackerFixtures.v4("10.0.0.1"))
        let body = announce(Self.query(port: 2), from: TrackerFixtures.v6("2001:db8::2"))
        let document = try BencodeDocument(decoding: body)
        #expect(document.root["peers"]?.bytes?.isEmpty == true)
        #expect(try AnnounceResponse(http: body).peers == [PeerAddress("[2001:db8::1]:1")!])
    }

    @Test mutating func answersDictionaryPeersWhenNotCompact() throws {
        _ = announce(Self.query(port: 1), from: TrackerFixtures.v4("10.0.0.1"))
        let body = announce(Self.query(port: 2).replacingCompact(), from: TrackerFixtures.v4("10.0.0.2"))
        let document = try BencodeDocument(decoding: body)
        #expect(document.root["peers"]?.kind == .list)
        #expect(try AnnounceResponse(http: body).peers == [PeerAddress("10.0.0.1:1")!])
    }

    @Test mutating func badRequestsGetAFailureReason() throws {
        for (query, reason) in [
            ("peer_id=-SH0100-abcdefghijkl&port=1", "missing info_hash"), (Self.query(port: 0), "invalid port"),
            ("info_hash=%41&peer_id=-SH0100-abcdefghijkl&port=1", "info_hash is 1 bytes, not 20"),
        ] {
            #expect(TrackerFixtures.code { try AnnounceResponse(http: announce(query, from: TrackerFixtures.v4("10.0.0.1"))) } == .refused(reason, retryIn: nil))
        }
        registry = SwarmRegistry(configuration: .init(allowList: [TrackerFixtures.otherHash], seed: 1), now: .zero)
        #expect(TrackerFixtures.code { try AnnounceResponse(http: announce(Self.query(port: 1), from: TrackerFixtures.v4("10.0.0.1"))) }
            == .refused(SwarmRegistry.Refusal.notAllowed.description, retryIn: nil))
    }

    @Test mutating func scrapesNamedAndAllSwarms() throws {
        _ = announce(Self.query(port: 1, left: 0), from: TrackerFixtures.v4("10.0.0.1"))
        _ = announce(Self.query(port: 2, extra: "&event=completed").replacingEvent(), from: TrackerFixtures.v4("10.0.0.2"))
        let named = try ScrapeResponse(http: scrape("info_hash=" + URLQuery.percentEncode(TrackerFixtures.infoHash.bytes) + "&info_hash=" + URLQuery.percentEncode(TrackerFixtures.otherHash.bytes)))
        #expect(named.files == [
            TrackerFixtures.infoHash: .init(seeders: 1, completed: 1, leechers: 1), TrackerFixtures.otherHash: .init(seeders: 0, completed: 0, leechers: 0),
        ])
        #expect(try ScrapeResponse(http: scrape("")).files.keys.sorted() == [TrackerFixtures.infoHash])
        server.maxFullScrape = 0
        #expect(throws: TrackerError.self) { try ScrapeResponse(http: scrape("")) }
        #expect(throws: TrackerError.self) { try ScrapeResponse(http: scrape("info_hash=x")) }
    }
}

extension String {
    /// The query with `compact=0` instead of `compact=1`.
    fileprivate func replacingCompact() -> String {
        split(separator: "&").map { $0 == "compact=1" ? "compact=0" : String($0) }.joined(separator: "&")
    }

    /// The query without its `event=started` (an `event` added after it wins).
    fileprivate func replacingEvent() -> String {
        split(separator: "&").filter { $0 != "event=started" }.joined(separator: "&")
    }
}
