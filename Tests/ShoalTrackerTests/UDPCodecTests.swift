import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("UDP tracker codecs (BEP 15)")
struct UDPCodecTests {
    static let announce = UDPAnnounce(
        infoHash: TrackerFixtures.infoHash, peerID: TrackerFixtures.peerID, downloaded: 1, left: 2, uploaded: 3,
        event: .started, key: 0xDEAD_BEEF, numWant: -1, port: 6881)

    @Test func requestsHaveBEP15sLayout() throws {
        let connect = UDPTrackerRequest.connect(transactionID: 0x0102_0304).encoded
        #expect(connect == [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4])
        let announce = UDPTrackerRequest.announce(connectionID: 9, transactionID: 7, Self.announce).encoded
        #expect(announce.count == 98)
        #expect(Array(announce[16..<36]) == TrackerFixtures.infoHash.bytes)
        #expect(Array(announce[80..<84]) == [0, 0, 0, 2], "started is 2")
        #expect(Array(announce[92..<98]) == [0xFF, 0xFF, 0xFF, 0xFF, 0x1A, 0xE1])
        let scrape = UDPTrackerRequest.scrape(connectionID: 9, transactionID: 7, infoHashes: [TrackerFixtures.infoHash, TrackerFixtures.otherHash])
        for request in [UDPTrackerRequest.connect(transactionID: 5), .announce(connectionID: 9, transactionID: 7, Self.announce), scrape] {
            #expect(try UDPTrackerRequest(decoding: request.encoded) == request)
        }
    }

    @Test func requestsMayBeLongerAndScrapesAreBounded() throws {
        var announce = UDPTrackerRequest.announce(connectionID: 9, transactionID: 7, Self.announce).encoded
        announce += [2, 5, 0x2F, 0x61, 0x62, 0x63, 0x64]  // BEP 41 URL data
        #expect(try UDPTrackerRequest(decoding: announce) == .announce(connectionID: 9, transactionID: 7, Self.announce))
        let many = UDPTrackerRequest.scrape(connectionID: 1, transactionID: 2, infoHashes: (0..<100).map(TrackerFixtures.hash)).encoded
        guard case .scrape(_, _, let hashes) = try UDPTrackerRequest(decoding: many + [1, 2, 3]) else {
            Issue.record("not a scrape")
            return
        }
        #expect(hashes == (0..<74).map(TrackerFixtures.hash))
    }

    @Test func refusesBadRequests() {
        var connect = UDPTrackerRequest.connect(transactionID: 1).encoded
        connect[0] = 1
        #expect(TrackerFixtures.code { try UDPTrackerRequest(decoding: connect) } == .badProtocolID)
        let announce = UDPTrackerRequest.announce(connectionID: 9, transactionID: 7, Self.announce).encoded
        #expect(TrackerFixtures.code { try UDPTrackerRequest(decoding: Array(announce.prefix(97))) } == .tooShort(needed: 98, got: 97))
        var error = announce
        error[11] = 3
        #expect(TrackerFixtures.code { try UDPTrackerRequest(decoding: error) } == .unexpectedAction(3))
        for prefix in TrackerFixtures.prefixes(announce) { _ = try? UDPTrackerRequest(decoding: prefix) }
    }

    @Test func responsesRoundTripInBothFamilies() throws {
        let v4 = UDPTrackerResponse.announce(
            transactionID: 1, interval: 1800, leechers: 2, seeders: 3, peers: [PeerAddress("1.2.3.4:5")!, PeerAddress("10.0.0.1:6881")!])
        #expect(try UDPTrackerResponse(decoding: v4.encoded, ipv6: false) == v4)
        #expect(v4.encoded.count == 20 + 12)
        let v6 = UDPTrackerResponse.announce(transactionID: 1, interval: 60, leechers: 0, seeders: 1, peers: [PeerAddress("[2001:db8::5]:80")!])
        #expect(try UDPTrackerResponse(decoding: v6.encoded, ipv6: true) == v6)
        for response in [
            UDPTrackerResponse.connect(transactionID: 4, connectionID: 0x0102_0304_0506_0708),
            .scrape(transactionID: 5, counts: [.init(seeders: 1, completed: 2, leechers: 3), .init(seeders: 0, completed: 0, leechers: 0)]),
            .error(transactionID: 6, message: "info_hash not allowed"),
        ] {
            #expect(try UDPTrackerResponse(decoding: response.encoded, ipv6: false) == response)
        }
    }

    @Test func readsScrapeCountsInBEP15sOrder() throws {
        // seeders, completed, leechers
        let bytes: [UInt8] = [0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        #expect(try UDPTrackerResponse(decoding: bytes, ipv6: false) == .scrape(transactionID: 9, counts: [.init(seeders: 1, completed: 2, leechers: 3)]))
    }

    @Test func toleratesPartialEntriesAndEscapesErrorText() throws {
        var bytes = UDPTrackerResponse.announce(transactionID: 1, interval: 1, leechers: 1, seeders: 1, peers: [PeerAddress("1.2.3.4:5")!]).encoded
        bytes += [9, 9, 9]
        guard case .announce(_, _, _, _, let peers) = try UDPTrackerResponse(decoding: bytes, ipv6: false) else {
            Issue.record("not an announce")
            return
        }
        #expect(peers == [PeerAddress("1.2.3.4:5")!])
        let error = [0, 0, 0, 3, 0, 0, 0, 1] + Array("bad\u{1b}[2J".utf8)
        #expect(try UDPTrackerResponse(decoding: error, ipv6: false) == .error(transactionID: 1, message: "bad\\u{1b}[2J"))
    }

    @Test func refusesShortAndUnknownResponses() {
        #expect(TrackerFixtures.code { try UDPTrackerResponse(decoding: [0, 0, 0, 0, 1], ipv6: false) } == .tooShort(needed: 8, got: 5))
        #expect(TrackerFixtures.code { try UDPTrackerResponse(decoding: [0, 0, 0, 0, 1, 2, 3, 4, 5], ipv6: false) } == .tooShort(needed: 16, got: 9))
        #expect(TrackerFixtures.code { try UDPTrackerResponse(decoding: [0, 0, 0, 1] + Array(repeating: 0, count: 10), ipv6: false) } == .tooShort(needed: 20, got: 14))
        #expect(TrackerFixtures.code { try UDPTrackerResponse(decoding: [0, 0, 0, 7, 0, 0, 0, 0], ipv6: false) } == .unexpectedAction(7))
        var random = SeededGenerator(seed: 3)
        for length in 0..<200 {
            let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? UDPTrackerResponse(decoding: garbage, ipv6: length % 2 == 0)
            _ = try? UDPTrackerRequest(decoding: garbage)
        }
    }
}
