import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalSwarm

@Suite("Local service discovery (BEP 14)")
struct LocalDiscoveryTests {
    static let hashA = Digest20(bytes: (0..<20).map { UInt8($0) })!
    static let hashB = Digest20(bytes: (0..<20).map { UInt8(200 - $0) })!
    static let start = Instant.zero + .seconds(1000)

    private func parse(_ text: String) throws(LocalDiscoveryAnnouncement.Error) -> LocalDiscoveryAnnouncement {
        try LocalDiscoveryAnnouncement(parsing: Array(text.utf8))
    }

    private func code(_ text: String) -> LocalDiscoveryAnnouncement.Error.Code? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func encodesAsBEP14WritesIt() throws {
        let announce = LocalDiscoveryAnnouncement(
            host: LocalDiscoveryAnnouncement.hostHeader(ipv6: false), port: 6881, infoHashes: [Self.hashA],
            cookie: "abc")
        #expect(
            String(decoding: announce.encoded, as: UTF8.self)
                == "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
                + "Infohash: 000102030405060708090a0b0c0d0e0f10111213\r\ncookie: abc\r\n\r\n\r\n")
        #expect(LocalDiscoveryAnnouncement.hostHeader(ipv6: true) == "[ff15::efc0:988f]:6771")
        #expect((try? LocalDiscoveryAnnouncement(parsing: announce.encoded)) == announce)
    }

    @Test func readsLenientlyWhatHTTPAllows() throws {
        let announce = try parse(
            "BT-SEARCH * HTTP/1.1\nhost: [ff15::efc0:988f]:6771\nPORT:51413\nX-Other: 1\n"
                + "infohash: 000102030405060708090A0B0C0D0E0F10111213\n"
                + "Infohash:   c8c7c6c5c4c3c2c1c0bfbebdbcbbbab9b8b7b6b5   \n\n")
        #expect(announce.port == 51413)
        #expect(announce.host == "[ff15::efc0:988f]:6771")
        #expect(announce.infoHashes == [Self.hashA, Self.hashB])
        #expect(announce.cookie == nil)
        // Headers after the empty line are not headers.
        #expect(try parse("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: \(Hex.encode(Self.hashA.bytes))\r\n\r\nPort: x\r\n").port == 1)
    }

    @Test func refusesWhatIsNotAnAnnounceWithItsReason() {
        let hash = Hex.encode(Self.hashA.bytes)
        #expect(code("GET / HTTP/1.1\r\n\r\n") == .notBTSearch)
        #expect(code("") == .notBTSearch)
        #expect(code("BT-SEARCH * HTTP/1.1\r\nInfohash: \(hash)\r\n\r\n") == .missingPort)
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n\r\n") == .missingInfoHash)
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: \(hash)\r\n") == .invalidPort("0"))
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: \(hash)\r\n") == .invalidPort("65536"))
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: -1\r\nInfohash: \(hash)\r\n") == .invalidPort("-1"))
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: \(hash.dropLast())\r\n") == .invalidInfoHash(String(hash.dropLast())))
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: \(hash.dropLast())g\r\n") == .invalidInfoHash(hash.dropLast() + "g"))
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort 1\r\n") == .malformedHeader)
        let many = (0..<26).map { "Infohash: \(Hex.encode([UInt8(0xAA)] + Array(repeating: UInt8($0), count: 19)))\r\n" }.joined()
        #expect(code("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n" + many) == .tooManyInfoHashes)
        #expect(code("BT-SEARCH * HTTP/1.1\r\nX: " + String(repeating: "y", count: 1400)) == .tooLong(1400 + 25))
        #expect((try? LocalDiscoveryAnnouncement(parsing: [0x42, 0xFF, 0xFE])) == nil)
        do {
            _ = try LocalDiscoveryAnnouncement(parsing: [0x42, 0xFF, 0xFE])
        } catch {
            #expect(error.code == .notText)
        }
    }

    @Test func truncationsAndGarbageGiveTypedErrors() {
        let full = LocalDiscoveryAnnouncement(
            host: LocalDiscoveryAnnouncement.hostHeader(ipv6: false), port: 6881, infoHashes: [Self.hashA, Self.hashB],
            cookie: "c00c1e"
        ).encoded
        for cut in 0..<full.count {
            // A cut after a whole Infohash line may still be an announce: then it must say no more than the whole.
            if let announce = try? LocalDiscoveryAnnouncement(parsing: Array(full[..<cut])) {
                #expect(announce.port == 6881 && !announce.infoHashes.isEmpty)
                #expect(Set(announce.infoHashes).isSubset(of: [Self.hashA, Self.hashB]))
            }
        }
        var random = SeededGenerator(seed: 14)
        let prefix = Array("BT-SEARCH * HTTP/1.1\r\nPort: 1".utf8)
        for round in 0..<2000 {
            let bytes = (round % 2 == 0 ? prefix : []) + (0..<Int(random.next() % 120)).map { _ in
                UInt8(truncatingIfNeeded: random.next())
            }
            do {
                let announce = try LocalDiscoveryAnnouncement(parsing: bytes)
                #expect(try LocalDiscoveryAnnouncement(parsing: announce.encoded).infoHashes == announce.infoHashes)
            } catch {
                #expect(error.description.hasPrefix("LSD announce: "))
            }
        }
    }

    @Test func announcesAtOnceThenEveryFiveMinutesAndNeverTwiceAMinute() throws {
        var lsd = LocalDiscovery(configuration: .init(cookie: "me"))
        let first = lsd.add(Self.hashA, port: 6881, now: Self.start)
        #expect(first.count == 2, "one announce to each group")
        guard case .send(let bytes, .ipv4) = first[0], case .send(let bytes6, .ipv6) = first[1] else {
            Issue.record("not two sends: \(first)")
            return
        }
        let announce = try LocalDiscoveryAnnouncement(parsing: bytes)
        #expect(announce.infoHashes == [Self.hashA] && announce.port == 6881 && announce.cookie == "me")
        #expect(announce.host == "239.192.152.143:6771")
        #expect(try LocalDiscoveryAnnouncement(parsing: bytes6).host == "[ff15::efc0:988f]:6771")
        // A second torrent waits for the gap.
        #expect(lsd.add(Self.hashB, port: 6881, now: Self.start + .seconds(10)).isEmpty)
        #expect(lsd.nextDeadline == Self.start + .seconds(60))
        let second = lsd.tick(now: Self.start + .seconds(60))
        guard case .send(let secondBytes, _)? = second.first else {
            Issue.record("no second announce")
            return
        }
        #expect(try LocalDiscoveryAnnouncement(parsing: secondBytes).infoHashes == [Self.hashB])
        #expect(lsd.tick(now: Self.start + .seconds(299)).isEmpty)
        #expect(lsd.tick(now: Self.start + .seconds(300)).count == 2)
        // Over an hour with 30 torrents: never two announces within a minute; each torrent every 5–7 minutes.
        var many = LocalDiscovery(configuration: .init(cookie: "me", groups: [.ipv4]))
        var announced: [Digest20: [Instant]] = [:]
        var sends: [Instant] = []
        for index in 0..<30 {
            let hash = Digest20(bytes: [UInt8(index)] + Array(repeating: 0, count: 19))!
            for case .send(let bytes, _) in many.add(hash, port: 6881, now: Self.start) {
                sends.append(Self.start)
                for hash in try LocalDiscoveryAnnouncement(parsing: bytes).infoHashes { announced[hash, default: []].append(Self.start) }
            }
        }
        for second in stride(from: 1, through: 3600, by: 1) {
            let now = Self.start + .seconds(Int64(second))
            for case .send(let bytes, _) in many.tick(now: now) {
                sends.append(now)
                for hash in try LocalDiscoveryAnnouncement(parsing: bytes).infoHashes { announced[hash, default: []].append(now) }
            }
        }
        #expect(zip(sends, sends.dropFirst()).allSatisfy { $1 - $0 >= .seconds(60) })
        #expect(announced.count == 30)
        for times in announced.values {
            #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 >= .seconds(300) && $1 - $0 <= .seconds(420) })
        }
    }

    @Test func findsPeersOfOurTorrentsAndIgnoresItselfAndFloods() {
        var lsd = LocalDiscovery(configuration: .init(cookie: "me", maxHosts: 2))
        _ = lsd.add(Self.hashA, port: 6881, now: Self.start)
        let neighbour = PeerAddress("192.168.1.20:6771")!.host
        func announce(_ hashes: [Digest20], port: UInt16 = 51413, cookie: String? = "them") -> [UInt8] {
            LocalDiscoveryAnnouncement(host: "239.192.152.143:6771", port: port, infoHashes: hashes, cookie: cookie).encoded
        }
        #expect(
            lsd.received(announce([Self.hashB, Self.hashA]), from: neighbour, now: Self.start)
                == [.found(Self.hashA, PeerAddress("192.168.1.20:51413")!)])
        #expect(lsd.received(announce([Self.hashA]), from: neighbour, now: Self.start + .milliseconds(500)).isEmpty, "flood")
        #expect(lsd.received(announce([Self.hashA]), from: neighbour, now: Self.start + .seconds(2)).count == 1)
        #expect(lsd.received(announce([Self.hashA], cookie: "me"), from: neighbour, now: Self.start + .seconds(9)).isEmpty, "our own")
        #expect(lsd.received(announce([Self.hashB]), from: neighbour, now: Self.start + .seconds(20)).isEmpty, "not ours")
        #expect(lsd.received(Array("garbage".utf8), from: neighbour, now: Self.start + .seconds(30)).isEmpty)
        // Hosts remembered stay bounded; an IPv6 sender gives an IPv6 peer.
        let v6 = PeerAddress("[fe80::1]:6771")!.host
        for index in 0..<10 {
            let host = PeerAddress("10.0.0.\(index + 1):6771")!.host
            #expect(lsd.received(announce([Self.hashA]), from: host, now: Self.start + .seconds(40)).count == 1)
        }
        #expect(lsd.received(announce([Self.hashA], port: 7000), from: v6, now: Self.start + .seconds(50))
            == [.found(Self.hashA, PeerAddress("[fe80::1]:7000")!)])
        lsd.remove(Self.hashA)
        #expect(lsd.received(announce([Self.hashA]), from: neighbour, now: Self.start + .seconds(60)).isEmpty)
        #expect(lsd.nextDeadline == nil)
    }
}
