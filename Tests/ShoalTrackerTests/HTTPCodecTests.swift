import ShoalBencode
import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("HTTP tracker codecs")
struct HTTPCodecTests {
    @Test func announceQueryEncodesBinaryAndEveryField() {
        var request = AnnounceRequest(
            infoHash: Bytes20(bytes: [0x00, 0x20, 0x7E, 0xFF, 0x41, 0x2D] + Array(repeating: 0x61, count: 14))!,
            peerID: TrackerFixtures.peerID, port: 6881, uploaded: 10, downloaded: 20, left: 30, event: .started,
            key: 0x0A0B_0C0D, numWant: 50, trackerID: Array("id 1".utf8))
        let query = request.httpQuery
        #expect(query.hasPrefix("info_hash=%00%20~%FFA-aaaaaaaaaaaaaa&peer_id=-SH0100-abcdefghijkl&port=6881"))
        #expect(query.contains("&uploaded=10&downloaded=20&left=30&corrupt=0&key=0a0b0c0d&event=started&numwant=50"))
        #expect(query.contains("&compact=1") && query.hasSuffix("&trackerid=id%201"))
        request.event = .none
        request.numWant = nil
        request.trackerID = nil
        #expect(!request.httpQuery.contains("event=") && !request.httpQuery.contains("numwant") && !request.httpQuery.contains("trackerid"))
    }

    @Test func theServerReadsWhatTheClientWrites() throws {
        let request = AnnounceRequest(
            infoHash: TrackerFixtures.infoHash, peerID: TrackerFixtures.peerID, port: 51413, uploaded: 1, downloaded: 2,
            left: 3, event: .completed, key: 7, numWant: 80, trackerID: [0, 1, 0xFF])
        let parsed = try HTTPAnnounceQuery(query: Array(request.httpQuery.utf8))
        #expect(parsed.infoHash == request.infoHash && parsed.peerID == request.peerID && parsed.port == 51413)
        #expect(parsed.uploaded == 1 && parsed.downloaded == 2 && parsed.left == 3 && parsed.event == .completed)
        #expect(parsed.numWant == 80 && parsed.compact && parsed.trackerID == [0, 1, 0xFF] && parsed.key == Array("00000007".utf8))
    }

    @Test func queryParserDecodesPercentAndPlusAndKeepsBrokenEscapes() {
        var seen: [(String, [UInt8])] = []
        let query = Array("a=%41%2b+b&&=x&b=%zz%4&c&d=%e2%82%ac#frag=1".utf8)
        _ = query.withUnsafeBytes { buffer in
            URLQuery.forEachParameter(in: buffer) { name, value in
                seen.append((String(decoding: name, as: UTF8.self), Array(value)))
                return true
            }
        }
        #expect(seen.map(\.0) == ["a", "", "b", "c", "d"])
        #expect(seen[0].1 == Array("A+ b".utf8))
        #expect(seen[2].1 == Array("%zz%4".utf8))
        #expect(seen[3].1 == [])
        #expect(seen[4].1 == [0xE2, 0x82, 0xAC])
    }

    @Test func queryParserStopsAtItsParameterLimit() {
        let query = Array(Array(repeating: "x=1", count: 1000).joined(separator: "&").utf8)
        var count = 0
        _ = query.withUnsafeBytes { buffer in
            URLQuery.forEachParameter(in: buffer) { _, _ in
                count += 1
                return true
            }
        }
        #expect(count == URLQuery.maxParameters)
    }

    @Test(arguments: [
        ("peer_id=-SH0100-abcdefghijkl&port=1", "missing info_hash"),
        ("info_hash=abc&peer_id=-SH0100-abcdefghijkl&port=1", "info_hash is 3 bytes, not 20"),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&port=1", "missing peer_id"),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-SH0100-abcdefghijkl", "missing port"),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-SH0100-abcdefghijkl&port=0", "invalid port"),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-SH0100-abcdefghijkl&port=70000", "invalid port"),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-SH0100-abcdefghijkl&port=1&left=-5", "left is not a non-negative integer"),
    ])
    func refusesBadAnnounces(query: String, reason: String) {
        #expect(throws: TrackerError(.badRequest(reason))) { try HTTPAnnounceQuery(query: Array(query.utf8)) }
    }

    @Test func absurdNumbersSaturateOrFallBack() throws {
        let base = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-SH0100-abcdefghijkl&port=1"
        #expect(try HTTPAnnounceQuery(query: Array((base + "&numwant=99999999999999999999999").utf8)).numWant == Int.max)
        #expect(try HTTPAnnounceQuery(query: Array((base + "&numwant=-1").utf8)).numWant == -1)
        #expect(try HTTPAnnounceQuery(query: Array((base + "&numwant=lots").utf8)).numWant == nil)
        #expect(try HTTPAnnounceQuery(query: Array((base + "&uploaded=99999999999999999999").utf8)).uploaded == .max)
        #expect(try HTTPAnnounceQuery(query: Array((base + "&compact=0&event=paused").utf8)).compact == false)
        #expect(try HTTPAnnounceQuery(query: Array(base.utf8)).left == 1, "no left: a leecher")
    }

    @Test func scrapeQueryCollectsDistinctHashesUpToItsLimit() throws {
        let one = URLQuery.percentEncode(TrackerFixtures.infoHash.bytes)
        let two = URLQuery.percentEncode(TrackerFixtures.otherHash.bytes)
        #expect(try HTTPScrapeQuery(query: Array("info_hash=\(one)&x=1&info_hash=\(two)&info_hash=\(one)".utf8)).infoHashes
            == [TrackerFixtures.infoHash, TrackerFixtures.otherHash])
        #expect(try HTTPScrapeQuery(query: []).infoHashes.isEmpty)
        let many = (0..<150).map { "info_hash=" + URLQuery.percentEncode(TrackerFixtures.hash($0).bytes) }.joined(separator: "&")
        #expect(try HTTPScrapeQuery(query: Array(many.utf8)).infoHashes.count == HTTPScrapeQuery.maxInfoHashes)
        #expect(throws: TrackerError.self) { try HTTPScrapeQuery(query: Array("info_hash=short".utf8)) }
    }

    // MARK: - Answers

    @Test func readsACompactAnswerWithEveryField() throws {
        let peers4: [UInt8] = [127, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 0, 192, 168, 1, 1, 0, 80]
        let peers6: [UInt8] = Array(repeating: 0, count: 15) + [1, 0x1A, 0xE1]
        var entries: [String: BencodeValue] = ["interval": 1800, "min interval": 900, "complete": 5, "incomplete": 7]
        entries["downloaded"] = 11
        entries["tracker id"] = "abc"
        entries["warning message"] = "be nice\u{1b}[31m"
        entries["peers"] = .string(peers4)
        entries["peers6"] = .string(peers6)
        let body = BencodeValue.dictionary(entries)
        let response = try AnnounceResponse(http: body.encoded)
        #expect(response.interval == 1800 && response.minInterval == 900 && response.seeders == 5 && response.leechers == 7)
        #expect(response.downloaded == 11 && response.trackerID == Array("abc".utf8))
        #expect(response.warning == "be nice\\u{1b}[31m", "control characters are escaped")
        #expect(response.peers == [PeerAddress("127.0.0.1:6881")!, PeerAddress("192.168.1.1:80")!, PeerAddress("[::1]:6881")!],
            "port 0 is skipped")
    }

    @Test func readsDictionaryPeers() throws {
        let body: BencodeValue = [
            "interval": 60,
            "peers": [
                ["ip": "10.1.2.3", "port": 6881, "peer id": "-TR3000-aaaaaaaaaaaa"], ["ip": "::2", "port": 1],
                ["ip": "host.example", "port": 5], ["ip": "1.2.3.4", "port": 0], ["port": 9], "junk",
            ],
        ]
        #expect(try AnnounceResponse(http: body.encoded).peers == [PeerAddress("10.1.2.3:6881")!, PeerAddress("[::2]:1")!])
    }

    @Test func aFailureReasonIsARefusalWithItsRetry() {
        let refused: BencodeValue = ["failure reason": "unregistered torrent", "retry in": 30]
        #expect(TrackerFixtures.code { try AnnounceResponse(http: refused.encoded) } == .refused("unregistered torrent", retryIn: 30))
        let never: BencodeValue = ["failure reason": "banned", "retry in": "never"]
        #expect(TrackerFixtures.code { try AnnounceResponse(http: never.encoded) } == .refused("banned", retryIn: .max))
        let scrape: BencodeValue = ["failure reason": "no"]
        #expect(TrackerFixtures.code { try ScrapeResponse(http: scrape.encoded) } == .refused("no", retryIn: nil))
    }

    static let malformed: [BencodeValue] = [
        .list([]), ["interval": "soon"], ["interval": -1], ["peers": 5], ["peers": .string([1, 2, 3, 4, 5])],
        ["peers6": .string(Array(repeating: 0, count: 17))], ["tracker id": 1], ["complete": -3],
    ]

    @Test(arguments: HTTPCodecTests.malformed)
    func refusesMalformedAnswers(body: BencodeValue) {
        #expect(throws: TrackerError.self) { try AnnounceResponse(http: body.encoded) }
    }

    @Test func refusesTruncationsAndGarbageWithoutTrapping() throws {
        let body: BencodeValue = ["interval": 1800, "peers": .string([127, 0, 0, 1, 0x1A, 0xE1]), "complete": 1]
        let bytes = body.encoded
        for prefix in TrackerFixtures.prefixes(bytes) {
            #expect(throws: TrackerError.self) { try AnnounceResponse(http: prefix) }
        }
        var random = SeededGenerator(seed: 5)
        for length in 0..<300 {
            let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? AnnounceResponse(http: garbage)
            _ = try? ScrapeResponse(http: garbage)
        }
        let huge = Array(repeating: UInt8(ascii: "l"), count: 10_000)
        #expect(throws: TrackerError.self) { try AnnounceResponse(http: huge) }
        #expect(throws: TrackerError.self) {
            try AnnounceResponse(http: bytes, limits: .init(maxBytes: bytes.count - 1))
        }
    }

    @Test func keepsAtMostTheLimitOfPeers() throws {
        let body: BencodeValue = ["interval": 1, "peers": .string((0..<100).flatMap { [10, 0, 0, UInt8($0), 0, 1] })]
        #expect(try AnnounceResponse(http: body.encoded, limits: .init(maxPeers: 7)).peers.count == 7)
    }

    @Test func answersRoundTrip() throws {
        let response = AnnounceResponse(
            interval: 1800, minInterval: 60, trackerID: [1, 2], seeders: 3, leechers: 4, downloaded: 5,
            peers: [PeerAddress("1.2.3.4:5")!, PeerAddress("[2001:db8::1]:6881")!], warning: "careful")
        #expect(try AnnounceResponse(http: response.http) == response)
        let scrape = ScrapeResponse(
            files: [TrackerFixtures.infoHash: .init(seeders: 1, completed: 2, leechers: 3), TrackerFixtures.otherHash: .init(seeders: 0, completed: 0, leechers: 9)],
            minRequestInterval: 600)
        #expect(try ScrapeResponse(http: scrape.http) == scrape)
        // The encoder is canonical: keys sorted, so the bencode decoder finds nothing out of order.
        #expect(try BencodeDocument(decoding: response.http).unsortedKeyOffsets.isEmpty)
        #expect(try BencodeDocument(decoding: scrape.http).unsortedKeyOffsets.isEmpty)
    }

    @Test func scrapeSkipsKeysThatAreNotInfoHashes() throws {
        let body: BencodeValue = [
            "files": .dictionary([
                Array("short".utf8): ["complete": 1], TrackerFixtures.infoHash.bytes: ["complete": 2, "downloaded": 3, "incomplete": 4],
            ])
        ]
        #expect(try ScrapeResponse(http: body.encoded).files == [TrackerFixtures.infoHash: .init(seeders: 2, completed: 3, leechers: 4)])
        #expect(TrackerFixtures.code { try ScrapeResponse(http: BencodeValue.dictionary([String: BencodeValue]()).encoded) } == .missingField("files"))
    }
}
