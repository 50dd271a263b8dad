import ShoalCore
import Testing

@testable import ShoalDHT

@Suite("DHT node: lookups, announces, table upkeep")
struct DHTNodeLookupTests {
    typealias H = DHTNodeHarness

    /// Answers every pending query of the node as the nodes of `world` would (each named node from `world`),
    /// with `token` for get_peers, until the node sends nothing more; returns every query it sent.
    static func drive(
        _ node: inout TestNode, actions: [DHTAction], world: [NodeInfo], values: [NodeAddress] = [],
        now: Instant = .zero
    ) -> (queries: [(message: KRPCMessage, query: KRPCQuery, to: NodeAddress)], finished: [LookupResult], found: [PeerAddress]) {
        var pending = H.queries(actions)
        var all = pending
        var finished: [LookupResult] = []
        var found: [PeerAddress] = []
        for case .lookupFinished(let result) in actions { finished.append(result) }
        var steps = 0
        while !pending.isEmpty && steps < 1000 {
            steps += 1
            let (message, query, destination) = pending.removeFirst()
            guard let responder = world.first(where: { $0.address == destination }) else { continue }
            var response = KRPCResponse(id: responder.id)
            switch query.method {
            case .findNode(let target, _), .getPeers(let target, _):
                response.nodes = Array(world.sorted { ($0.id ^ target) < ($1.id ^ target) }.prefix(8))
                if case .getPeers = query.method {
                    response.token = Array("tok-\(responder.address.port)".utf8)
                    if !values.isEmpty { response.values = values }
                }
            default:
                break
            }
            let more = node.received(H.answer(message, with: response), from: destination, now: now)
            for case .lookupFinished(let result) in more { finished.append(result) }
            for case .peersFound(_, _, let peers) in more { found += peers }
            let next = H.queries(more)
            pending += next
            all += next
        }
        return (all, finished, found)
    }

    @Test func announceGoesToTheClosestWithTheirOwnTokens() throws {
        var node = H.node()
        var random = SplitMix64(seed: 50)
        let world = (0..<60).map { NodeInfo(id: .random(using: &random), address: H.address($0 + 1, port: UInt16(7000 + $0))) }
        H.populate(&node, with: Array(world.prefix(10)))
        let infoHash = NodeID.random(using: &random)
        let (ids, actions) = node.announce(infoHash, port: 51413, now: .zero)
        #expect(ids.count == 1)
        let run = Self.drive(&node, actions: actions, world: world, values: [H.address(900, port: 1234)])
        let announces = run.queries.filter { if case .announcePeer = $0.query.method { true } else { false } }
        let closest = Array(world.sorted { ($0.id ^ infoHash) < ($1.id ^ infoHash) }.prefix(8))
        #expect(Set(announces.map(\.to)) == Set(closest.map(\.address)))
        for announce in announces {
            guard case .announcePeer(let hash, let port, let token, let implied) = announce.query.method else { continue }
            #expect(hash == infoHash)
            #expect(port == 51413)
            #expect(!implied)
            #expect(token == Array("tok-\(announce.to.port)".utf8))
        }
        let result = try #require(run.finished.first { $0.id == ids[0] })
        #expect(result.announced == 8)
        #expect(result.closest.map(\.id) == closest.map(\.id))
        #expect(result.peers == [PeerAddress("10.0.3.132:1234")!])
        #expect(run.found == result.peers)
    }

    @Test func findNodeLookupsAreBoundedByThePendingLimit() {
        var node = H.node { $0.maxPendingQueries = 2 }
        var random = SplitMix64(seed: 51)
        H.populate(&node, with: H.randomNodes(20, random: &random))
        let (_, actions) = node.startLookup(.findNode, target: .random(using: &random), family: .ipv4, now: .zero)
        #expect(H.queries(actions).count == 2)
        #expect(node.pendingQueries == 2)
    }

    /// BEP 32: while its IPv6 table is nearly empty, a dual-stack node asks for both families and pings the
    /// IPv6 nodes it is told of; they enter its IPv6 table when they answer.
    @Test func dualStackNodesLearnTheOtherFamily() throws {
        var node = H.node { $0.families = [.ipv4, .ipv6] }
        var random = SplitMix64(seed: 52)
        let v4 = H.randomNodes(3, random: &random)
        let v6 = NodeInfo(id: .random(using: &random), address: NodeAddress("[2001:db8::7]:6881")!)
        let (_, actions) = node.start(bootstrap: v4.map(\.address), now: .zero)
        let queries = H.queries(actions).filter { $0.to.family == .ipv4 }
        let first = try #require(queries.first)
        guard case .findNode(_, let want) = first.query.method else {
            Issue.record("not find_node")
            return
        }
        #expect(want == [.ipv4, .ipv6])
        let responder = v4.first { $0.address == first.to }!
        let more = node.received(
            H.answer(first.message, with: KRPCResponse(id: responder.id, nodes: [], nodes6: [v6])), from: first.to, now: .zero)
        let ping = try #require(H.queries(more).first { $0.to == v6.address })
        #expect(ping.query.method == .ping)
        _ = node.received(H.answer(ping.message, with: KRPCResponse(id: v6.id)), from: v6.address, now: .zero)
        #expect(node.table(.ipv6).contains(v6.id))
    }

    /// Every 5 s at first, a bucket that is not full is filled: a find_node into it to the nearest known node,
    /// and its answer's nodes are pinged (BEP 5 refreshes; jch's dht bucket maintenance).
    @Test func bucketsThatAreNotFullAreFilled() throws {
        var node = H.node { $0.routing.refreshInterval = .seconds(100_000) }
        var random = SplitMix64(seed: 53)
        let known = H.randomNodes(3, random: &random)
        H.populate(&node, with: known)
        let actions = node.tick(now: .seconds(5))
        let fill = try #require(H.queries(actions).first)
        guard case .findNode(let target, _) = fill.query.method else {
            Issue.record("not find_node: \(fill.query.method)")
            return
        }
        #expect(fill.to == node.table(.ipv4).closest(to: target, count: 1).first?.address)
        let named = (0..<8).map { NodeInfo(id: target.randomSharingPrefix(20, using: &random), address: H.address(200 + $0)) }
        let responder = known.first { $0.address == fill.to }!
        let more = node.received(H.answer(fill.message, with: KRPCResponse(id: responder.id, nodes: named)), from: fill.to, now: .seconds(5))
        let pings = H.queries(more).filter { $0.query.method == .ping }
        #expect(!pings.isEmpty)
        #expect(pings.allSatisfy { ping in named.contains { $0.address == ping.to } })
    }

    @Test func lookupsNeverAskOurOwnID() {
        var node = H.node()
        var random = SplitMix64(seed: 54)
        var world = H.randomNodes(30, random: &random)
        // Other nodes name us (at the address they know us by).
        world.append(NodeInfo(id: node.id, address: H.address(999)))
        H.populate(&node, with: Array(world.prefix(5)))
        let (_, actions) = node.startLookup(.findNode, target: node.id, family: .ipv4, now: .zero)
        let run = Self.drive(&node, actions: actions, world: world)
        #expect(!run.queries.contains { $0.to == H.address(999) })
        #expect(run.finished.count == 1)
    }
}

@Suite("Node addresses")
struct NodeAddressTests {
    @Test func compactFormsRoundTrip() throws {
        for text in ["1.2.3.4:6881", "255.255.255.255:65535", "[::1]:1", "[2001:db8::ff00:42:8329]:51413"] {
            let address = try #require(NodeAddress(text))
            #expect(NodeAddress(compact: address.compact) == address)
            #expect(address.description == text)
            #expect(NodeAddress(address.peerAddress) == address)
        }
        #expect(NodeAddress(compact: [1, 2, 3, 4, 5]) == nil)
        #expect(NodeAddress(compact: [UInt8](repeating: 0, count: 17)) == nil)
    }

    @Test(arguments: [
        ("127.0.0.1:1", true), ("10.1.2.3:1", true), ("172.16.0.1:1", true), ("172.32.0.1:1", false),
        ("192.168.1.1:1", true), ("169.254.0.1:1", true), ("100.64.0.1:1", true), ("8.8.8.8:1", false),
        ("[::1]:1", true), ("[fd00::1]:1", true), ("[fe80::1]:1", true), ("[2001:db8::1]:1", false),
    ])
    func localAddressesAreNotVerifiable(text: String, local: Bool) throws {
        #expect(try #require(NodeAddress(text)).host.isLocal == local)
    }
}
