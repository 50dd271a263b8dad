import ShoalBencode
import ShoalCore
import Testing

@testable import ShoalDHT

@Suite("DHT node: answering queries")
struct DHTNodeServerTests {
    typealias H = DHTNodeHarness

    @Test func pingIsAnsweredWithOurIDAndTheRequesterAddress() throws {
        var node = H.node()
        var random = SplitMix64(seed: 2)
        let other = NodeID.random(using: &random)
        let source = H.address(7, port: 4000)
        let actions = node.received(H.query(.ping, from: other, transaction: [9, 9]), from: source, now: .zero)
        let sent = H.sent(actions)
        let reply = try #require(sent.first { $0.message.transactionID == [9, 9] })
        #expect(reply.to == source)
        #expect(reply.message.body == .response(KRPCResponse(id: node.id)))
        #expect(reply.message.requesterAddress == source)  // BEP 42 `ip`
        #expect(reply.message.version == node.configuration.version)
        // The unknown querier is pinged before it may enter the table; it enters when it answers.
        let ping = try #require(H.queries(actions).first { $0.query.method == .ping })
        #expect(ping.to == source)
        #expect(node.nodeCount == 0)
        _ = node.received(H.answer(ping.message, with: KRPCResponse(id: other)), from: source, now: .zero)
        #expect(node.table(.ipv4).contains(other))
    }

    @Test func findNodeAnswersTheClosestGoodNodes() throws {
        var node = H.node()
        var random = SplitMix64(seed: 3)
        let known = H.randomNodes(300, random: &random)
        H.populate(&node, with: known)
        let entries = node.table(.ipv4).entries
        #expect(entries.count > 40)
        let target = NodeID.random(using: &random)
        let actions = node.received(
            H.query(.findNode(target: target, want: []), from: .random(using: &random)), from: H.address(5000), now: .zero)
        guard case .response(let response) = try #require(H.sent(actions).first).message.body else {
            Issue.record("no response")
            return
        }
        let expected = entries.sorted { ($0.id ^ target) < ($1.id ^ target) }.prefix(8).map(\.info)
        #expect(response.nodes == Array(expected))
        #expect(response.nodes6 == nil)
        #expect(response.token == nil)
    }

    @Test func wantSelectsTheFamilies() throws {
        var node = H.node { $0.families = [.ipv4, .ipv6] }
        var random = SplitMix64(seed: 4)
        H.populate(&node, with: H.randomNodes(20, random: &random))
        let v6 = (0..<5).map { NodeInfo(id: .random(using: &random), address: NodeAddress("[2001:db8::\($0 + 1)]:6881")!) }
        H.populate(&node, with: v6)
        #expect(node.table(.ipv6).count == 5)
        func ask(_ want: KRPCQuery.Want, from source: NodeAddress) throws -> KRPCResponse {
            let actions = node.received(
                H.query(.findNode(target: .random(using: &random), want: want), from: .random(using: &random)),
                from: source, now: .zero)
            guard case .response(let response) = try #require(H.sent(actions).first).message.body else { throw DHTError(.missingField, field: "r", at: 0) }
            return response
        }
        let plain4 = try ask([], from: H.address(900))
        #expect(plain4.nodes?.count == 8)
        #expect(plain4.nodes6 == nil)
        let plain6 = try ask([], from: NodeAddress("[2001:db8::99]:1")!)
        #expect(plain6.nodes == nil)
        #expect(plain6.nodes6?.count == 5)
        let both = try ask([.ipv4, .ipv6], from: H.address(901))
        #expect(both.nodes?.count == 8)
        #expect(both.nodes6?.count == 5)
        #expect(both.nodes6?.allSatisfy { $0.address.family == .ipv6 } == true)
    }

    @Test func announceWithTheTokenThenGetPeersReturnsThePeer() throws {
        var node = H.node()
        var random = SplitMix64(seed: 5)
        let infoHash = NodeID.random(using: &random)
        let announcer = H.address(20, port: 7000)
        let announcerID = NodeID.random(using: &random)
        // get_peers: no values yet, a token.
        let first = H.sent(node.received(H.query(.getPeers(infoHash: infoHash, want: []), from: announcerID), from: announcer, now: .zero))
        guard case .response(let answer) = try #require(first.first).message.body else { return }
        let token = try #require(answer.token)
        #expect(answer.values == nil)
        // announce_peer with it: stored under the source IP and the given port.
        let announce = H.sent(node.received(
            H.query(.announcePeer(infoHash: infoHash, port: 51413, token: token, impliedPort: false), from: announcerID),
            from: announcer, now: .seconds(1)))
        #expect(announce.first?.message.body == .response(KRPCResponse(id: node.id)))
        #expect(node.storedPeers == 1)
        // Another node asks: the peer is in `values`, and nodes come too.
        let asker = H.address(21)
        let second = H.sent(node.received(H.query(.getPeers(infoHash: infoHash, want: []), from: .random(using: &random)), from: asker, now: .seconds(2)))
        guard case .response(let found) = try #require(second.first).message.body else { return }
        #expect(found.values == [NodeAddress(host: announcer.host, port: 51413)])
        #expect(found.token != nil)
        #expect(found.token != token)  // tokens are per requester
    }

    @Test func impliedPortUsesTheSourcePort() throws {
        var node = H.node()
        var random = SplitMix64(seed: 6)
        let infoHash = NodeID.random(using: &random)
        let source = H.address(30, port: 40000)
        let token = node.tokens.token(for: source.host, infoHash: infoHash)
        _ = node.received(
            H.query(.announcePeer(infoHash: infoHash, port: 1, token: token, impliedPort: true), from: .random(using: &random)),
            from: source, now: .zero)
        #expect(node.peerStore.peers(for: infoHash, family: .ipv4, limit: 10, using: &random) == [source])
    }

    @Test func badTokensAreRefusedWith203() throws {
        var node = H.node()
        var random = SplitMix64(seed: 7)
        let infoHash = NodeID.random(using: &random)
        let source = H.address(40)
        let stranger = H.address(41)
        let token = node.tokens.token(for: source.host, infoHash: infoHash)
        func announce(_ token: [UInt8], from address: NodeAddress, for hash: NodeID, now: Instant) -> KRPCMessage.Body? {
            H.sent(node.received(
                H.query(.announcePeer(infoHash: hash, port: 6881, token: token, impliedPort: false), from: .random(using: &random)),
                from: address, now: now)).first?.message.body
        }
        let refused = KRPCMessage.Body.error(KRPCErrorReply(code: 203, message: "bad token"))
        #expect(announce(token, from: stranger, for: infoHash, now: .zero) == refused)  // another IP
        #expect(announce(token, from: source, for: .random(using: &random), now: .zero) == refused)  // another info-hash
        #expect(announce([1, 2, 3], from: source, for: infoHash, now: .zero) == refused)
        #expect(node.statistics.badTokens == 3)
        #expect(node.storedPeers == 0)
        // BEP 5: the secret changes every 5 minutes and the previous one is still accepted...
        _ = node.tick(now: .seconds(301))
        #expect(announce(token, from: source, for: infoHash, now: .seconds(302)) == .response(KRPCResponse(id: node.id)))
        // ... but not the one before.
        _ = node.tick(now: .seconds(610))
        #expect(announce(token, from: source, for: infoHash, now: .seconds(611)) == refused)
    }

    @Test func peersOfTheOtherFamilyAreNotReturned() throws {
        var node = H.node { $0.families = [.ipv4, .ipv6] }
        var random = SplitMix64(seed: 8)
        let infoHash = NodeID.random(using: &random)
        let v6 = NodeAddress("[2001:db8::5]:6881")!
        node.peerStore.announce(NodeAddress(host: v6.host, port: 1000), for: infoHash, now: .zero)
        let actions = node.received(H.query(.getPeers(infoHash: infoHash, want: []), from: .random(using: &random)), from: H.address(50), now: .zero)
        guard case .response(let response) = try #require(H.sent(actions).first).message.body else { return }
        #expect(response.values == nil)
    }

    @Test func malformedAndUnknownQueries() throws {
        var node = H.node()
        var random = SplitMix64(seed: 9)
        let source = H.address(60)
        // A query whose id is short: error 203, same transaction.
        let bad = Array("d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe".utf8)
        let reply = try #require(H.sent(node.received(bad, from: source, now: .zero)).first)
        #expect(reply.message.transactionID == Array("xy".utf8))
        guard case .error(let error) = reply.message.body else {
            Issue.record("not an error")
            return
        }
        #expect(error.code == 203)
        // Garbage and malformed responses: nothing at all.
        for garbage in ["", "hello", "d1:rd2:id3:abce1:t2:xy1:y1:re", "i42e", "d1:t2:aa1:y1:qe"] {
            #expect(H.sent(node.received(Array(garbage.utf8), from: source, now: .zero)).filter {
                if case .error = $0.message.body { return false } else { return true }
            }.isEmpty)
        }
        #expect(node.statistics.malformed == 6)
        // An unknown method: 204.
        let unknown = H.sent(node.received(
            H.query(.unknown(name: Array("vote".utf8)), from: .random(using: &random)), from: source, now: .zero))
        #expect(unknown.first?.message.body == .error(KRPCErrorReply(code: 204, message: "method unknown")))
        // A query claiming our own id is ignored.
        #expect(H.sent(node.received(H.query(.ping, from: node.id), from: source, now: .zero)).isEmpty)
    }

    @Test func answersThatMatchNoQueryAreDropped() throws {
        var node = H.node()
        var random = SplitMix64(seed: 10)
        let target = H.address(70)
        let ping = try #require(H.queries(node.ping(target, now: .zero)).first)
        // Unknown transaction.
        _ = node.received(KRPCMessage(transactionID: [1, 2, 3, 4], body: .response(KRPCResponse(id: .random(using: &random)))).encoded, from: target, now: .zero)
        // The right transaction from another address (spoofed): dropped, the query still pending.
        _ = node.received(H.answer(ping.message, with: KRPCResponse(id: .random(using: &random))), from: H.address(71), now: .zero)
        #expect(node.statistics.unexpected == 2)
        #expect(node.pendingQueries == 1)
        #expect(node.nodeCount == 0)
        _ = node.received(H.answer(ping.message, with: KRPCResponse(id: .random(using: &random))), from: target, now: .zero)
        #expect(node.pendingQueries == 0)
        #expect(node.nodeCount == 1)
    }

    @Test func queriesAreRateLimitedPerSource() {
        var node = H.node { $0.queriesPerSecondPerHost = 10; $0.perHostBurst = 20 }
        var random = SplitMix64(seed: 11)
        func answered(from source: NodeAddress, count: Int, now: Instant) -> Int {
            (0..<count).reduce(0) { total, index in
                let replies = H.sent(node.received(H.query(.ping, from: .random(using: &random), transaction: [UInt8(index & 0xFF)]), from: source, now: now))
                return total + replies.filter { if case .response = $0.message.body { true } else { false } }.count
            }
        }
        #expect(answered(from: H.address(80), count: 100, now: .zero) == 20)
        #expect(answered(from: H.address(81), count: 5, now: .zero) == 5)  // others are not affected
        #expect(answered(from: H.address(80), count: 100, now: .seconds(1)) == 10)  // refilled at 10 per second
        #expect(node.statistics.rateLimited == 170)
        // Loopback sources count only in the total (tests run many nodes on one host).
        #expect(answered(from: NodeAddress("127.0.0.1:9")!, count: 100, now: .seconds(2)) == 100)
    }

    @Test func theRateLimiterRemembersBoundedSources() {
        var node = H.node { $0.rateLimitedHosts = 64 }
        var random = SplitMix64(seed: 12)
        for index in 0..<10_000 {
            _ = node.received(H.query(.ping, from: .random(using: &random)), from: H.address(1000 + index), now: .zero)
        }
        #expect(node.pendingQueries <= node.configuration.maxPendingQueries)
        // Sources beyond the table are refused for a second, not tracked.
        #expect(node.statistics.rateLimited >= 10_000 - 64)
    }
}

@Suite("DHT node: read-only mode (BEP 43)")
struct DHTNodeReadOnlyTests {
    typealias H = DHTNodeHarness

    @Test func aReadOnlyNodeAnswersNothingAndSaysSo() throws {
        var node = H.node { $0.readOnly = true }
        var random = SplitMix64(seed: 20)
        #expect(H.sent(node.received(H.query(.ping, from: .random(using: &random)), from: H.address(1), now: .zero)).isEmpty)
        let (_, actions) = node.start(bootstrap: [H.address(2)], now: .zero)
        let query = try #require(H.queries(actions).first)
        #expect(query.message.readOnly)
        #expect(String(decoding: KRPCMessage(transactionID: [1], readOnly: true, body: .query(query.query)).encoded, as: UTF8.self).contains("2:roi1e"))
    }

    @Test func readOnlyQueriersStayOutOfTheTable() throws {
        var node = H.node()
        var random = SplitMix64(seed: 21)
        let actions = node.received(H.query(.ping, from: .random(using: &random), readOnly: true), from: H.address(3), now: .zero)
        // Answered as usual, but not pinged for the table.
        #expect(H.sent(actions).count == 1)
        #expect(H.queries(actions).isEmpty)
    }
}

@Suite("DHT node: timeouts, bounds, state")
struct DHTNodeMaintenanceTests {
    typealias H = DHTNodeHarness

    @Test func silentNodesArePingedTwiceThenReplaced() throws {
        var node = H.node { $0.bucketFillInterval = .seconds(1000) }
        var random = SplitMix64(seed: 30)
        let known = H.randomNodes(1, random: &random)
        H.populate(&node, with: known)
        // Ping it; it stays silent.
        var actions = node.ping(known[0].address, now: .seconds(10))
        #expect(H.queries(actions).count == 1)
        #expect(actions.last == .schedule(at: .seconds(15)))
        actions = node.tick(now: .seconds(15))
        // BEP 5: tried once more.
        #expect(H.queries(actions).map(\.to) == [known[0].address])
        #expect(node.table(.ipv4).entry(for: known[0].id)?.failures == 1)
        _ = node.tick(now: .seconds(20))
        #expect(node.table(.ipv4).entry(for: known[0].id)?.failures == 2)
        #expect(node.statistics.timeouts == 2)
        // Bad nodes are not given to others.
        #expect(node.table(.ipv4).closest(to: known[0].id, count: 8).isEmpty)
    }

    @Test func pendingQueriesAreBounded() {
        var node = H.node { $0.maxPendingQueries = 10 }
        for index in 0..<100 { _ = node.ping(H.address(index), now: .zero) }
        #expect(node.pendingQueries == 10)
        _ = node.tick(now: .seconds(6))
        #expect(node.pendingQueries == 0)
    }

    @Test func peersExpire() {
        var node = H.node()
        var random = SplitMix64(seed: 31)
        let infoHash = NodeID.random(using: &random)
        node.peerStore.announce(H.address(1), for: infoHash, now: .zero)
        node.peerStore.announce(H.address(2), for: infoHash, now: .seconds(20 * 60))
        _ = node.tick(now: .seconds(31 * 60))
        #expect(node.storedPeers == 1)
        _ = node.tick(now: .seconds(51 * 60))
        #expect(node.storedPeers == 0)
    }

    @Test func thePeerStoreIsBounded() {
        var store = PeerStore(configuration: .init(maxPeersPerInfoHash: 5, maxInfoHashes: 3, maxPeers: 100))
        var random = SplitMix64(seed: 32)
        let hashes = (0..<10).map { _ in NodeID.random(using: &random) }
        for (round, hash) in hashes.enumerated() {
            for index in 0..<20 { store.announce(H.address(index), for: hash, now: .seconds(Double(round * 20 + index))) }
        }
        #expect(store.infoHashCount == 3)
        #expect(store.count == 15)
        // Per info-hash, the newest announces are kept.
        let kept = store.peers(for: hashes[9], family: .ipv4, limit: 100, using: &random)
        #expect(Set(kept) == Set((15..<20).map { H.address($0) }))
        #expect(store.peers(for: hashes[9], family: .ipv4, limit: 2, using: &random).count == 2)
        // In total: beyond the bound, new peers are refused until some expire.
        var small = PeerStore(configuration: .init(maxPeersPerInfoHash: 5, maxInfoHashes: 3, maxPeers: 7))
        for hash in hashes.prefix(3) {
            for index in 0..<5 { small.announce(H.address(index), for: hash, now: .zero) }
        }
        #expect(small.count == 7)
        small.expire(now: .seconds(31 * 60))
        #expect(small.count == 0)
        #expect(small.infoHashCount == 0)
    }

    @Test func stateRoundTripsAndRestartRejoinsWithoutBootstrap() throws {
        var node = H.node { $0.families = [.ipv4, .ipv6] }
        var random = SplitMix64(seed: 33)
        H.populate(&node, with: H.randomNodes(50, random: &random))
        H.populate(&node, with: [NodeInfo(id: .random(using: &random), address: NodeAddress("[2001:db8::1]:6881")!)])
        let state = node.state
        let bytes = state.encoded
        let loaded = try DHTState(decoding: bytes)
        #expect(loaded == state)
        #expect(loaded.nodes.count == node.nodeCount)
        // A new node from the state asks the saved nodes for its own id; no bootstrap address is given.
        var restarted = TestNode(configuration: node.configuration, state: loaded, random: SplitMix64(seed: 34), now: .zero)
        #expect(restarted.id == node.id)
        let queries = H.queries(restarted.start(bootstrap: [], now: .zero).1)
        #expect(queries.count == 4)  // α = 3 in IPv4, and the one IPv6 node
        for query in queries {
            guard case .findNode(let target, _) = query.query.method else {
                Issue.record("not find_node: \(query.query.method)")
                continue
            }
            #expect(target == node.id)
        }
        #expect(Set(queries.map(\.to)).isSubset(of: Set(loaded.nodes.map(\.address))))
    }

    @Test func damagedStateFilesAreRefused() {
        let good = DHTState(id: .max, nodes: [NodeInfo(id: .zero, address: H.address(1))]).encoded
        for length in 0..<good.count {
            #expect(throws: DHTError.self) { try DHTState(decoding: Array(good.prefix(length))) }
        }
        let wrongVersion = BencodeValue.dictionary(["id": .string(NodeID.max.bytes), "version": 2]).encoded
        #expect { try DHTState(decoding: wrongVersion) } throws: { ($0 as? DHTError)?.code == .unsupportedVersion(2) }
        let badNodes = BencodeValue.dictionary(["id": .string(NodeID.max.bytes), "nodes": .string([1, 2, 3]), "version": 1]).encoded
        #expect { try DHTState(decoding: badNodes) } throws: { ($0 as? DHTError)?.field == "nodes" }
    }

    @Test func agreedExternalAddressGivesASecureID() throws {
        var node = H.node()
        var random = SplitMix64(seed: 35)
        let external = try #require(NodeAddress("203.0.113.9:6881"))
        let before = node.id
        var changed: [NodeID] = []
        for index in 0..<3 {
            let voter = NodeAddress("198.51.100.\(index + 1):6881")!
            let ping = try #require(H.queries(node.ping(voter, now: .zero)).first)
            let actions = node.received(H.answer(ping.message, with: KRPCResponse(id: .random(using: &random)), requester: external), from: voter, now: .zero)
            for case .nodeIDChanged(let id) in actions { changed.append(id) }
        }
        #expect(changed.count == 1)
        #expect(node.id != before)
        #expect(node.id.isSecure(for: external.host))
        #expect(node.externalAddress == external.host)
        #expect(node.nodeCount == 3)  // the table kept its nodes
    }
}
