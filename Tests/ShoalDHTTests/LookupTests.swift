import ShoalCore
import Testing

@testable import ShoalDHT

@Suite("Iterative lookups")
struct LookupTests {
    typealias H = DHTNodeHarness

    /// A world of nodes where each node knows the true closest nodes to any target among those it "sees"
    /// (every node, here): the lookup must end on the brute-force k closest.
    struct World {
        var nodes: [NodeInfo]
        func closest(to target: NodeID, count: Int) -> [NodeInfo] {
            Array(nodes.sorted { ($0.id ^ target) < ($1.id ^ target) }.prefix(count))
        }
        /// What a node answers: the 8 nodes nearest the target that it knows. As in Kademlia, a node knows a
        /// part of the world far away (a random quarter here) and everything in its own region (the nodes at
        /// least as close to the target as itself, less one bit).
        func answer(from node: NodeInfo, target: NodeID, random: inout SplitMix64) -> [NodeInfo] {
            let region = max(0, node.id.commonPrefixLength(with: target) - 1)
            let known = nodes.filter { $0.id.commonPrefixLength(with: target) >= region || random.next() % 4 == 0 }
            return Array(known.sorted { ($0.id ^ target) < ($1.id ^ target) }.prefix(8))
        }
    }

    static func run(
        _ lookup: inout Lookup, world: World, silent: Set<NodeAddress> = [], random: inout SplitMix64, maxRounds: Int = 200
    ) -> Int {
        var rounds = 0
        var inFlight: [(id: NodeID?, address: NodeAddress)] = []
        while !lookup.searchDone && rounds < maxRounds {
            inFlight += lookup.nextQueries(now: .seconds(Double(rounds)), budget: 100)
            guard !inFlight.isEmpty else { break }
            let query = inFlight.removeFirst()
            if silent.contains(query.address) {
                lookup.failed(query.address, timedOut: true)
            } else {
                let node = world.nodes.first { $0.address == query.address }!
                _ = lookup.responded(
                    from: node.address, id: node.id, nodes: world.answer(from: node, target: lookup.target, random: &random),
                    token: [1], values: [])
            }
            rounds += 1
        }
        return rounds
    }

    @Test func convergesOnTheTrueClosest() {
        var random = SplitMix64(seed: 40)
        let world = World(nodes: H.randomNodes(2000, random: &random))
        for _ in 0..<20 {
            let target = NodeID.random(using: &random)
            let start = Array(world.nodes.shuffled(using: &random).prefix(8))
            var lookup = Lookup(
                id: LookupID(rawValue: 1), kind: .findNode, target: target, family: .ipv4, from: start,
                configuration: .init(), now: .zero)
            _ = Self.run(&lookup, world: world, random: &random)
            #expect(lookup.searchDone)
            #expect(lookup.closestResponded.map(\.info) == world.closest(to: target, count: 8))
            #expect(lookup.result(now: .zero).queries <= 128)
        }
    }

    @Test func sendsAlphaQueriesAtOnceAndSlowOnesFreeTheirSlot() {
        var random = SplitMix64(seed: 41)
        let start = H.randomNodes(20, random: &random)
        var lookup = Lookup(
            id: LookupID(rawValue: 1), kind: .getPeers, target: .random(using: &random), family: .ipv4, from: start,
            configuration: .init(), now: .zero)
        let first = lookup.nextQueries(now: .zero, budget: 100)
        #expect(first.count == 3)
        #expect(lookup.nextQueries(now: .zero, budget: 100).isEmpty)
        // The closest ones first.
        let sorted = start.sorted { ($0.id ^ lookup.target) < ($1.id ^ lookup.target) }
        #expect(first.map(\.address) == sorted.prefix(3).map(\.address))
        // The first soft timeout of one of the k closest: asked again, still holding its slot.
        let resend = lookup.softTimedOut(first[0].address)
        #expect(resend)
        #expect(lookup.nextQueries(now: .zero, budget: 100).isEmpty)
        // The second: slow, its slot goes to the next closest.
        let again = lookup.softTimedOut(first[0].address)
        #expect(!again)
        let next = lookup.nextQueries(now: .zero, budget: 100)
        #expect(next.map(\.address) == [sorted[3].address])
        // Both queries to it time out: only then is it failed.
        lookup.failed(first[0].address, timedOut: true)
        #expect(lookup.candidates.first { $0.address == first[0].address }?.state == .slow)
        lookup.failed(first[0].address, timedOut: true)
        #expect(lookup.candidates.first { $0.address == first[0].address }?.state == .failed)
        // The budget (the node's transaction limit) holds.
        lookup.failed(first[1].address, timedOut: true)
        lookup.failed(first[2].address, timedOut: true)
        #expect(lookup.nextQueries(now: .zero, budget: 1).count == 1)
    }

    @Test func failedNodesAreReplacedByTheNextClosest() {
        var random = SplitMix64(seed: 42)
        let world = World(nodes: H.randomNodes(1000, random: &random))
        let target = NodeID.random(using: &random)
        let truth = world.closest(to: target, count: 12)
        // The two closest nodes never answer.
        let silent = Set(truth.prefix(2).map(\.address))
        var lookup = Lookup(
            id: LookupID(rawValue: 1), kind: .findNode, target: target, family: .ipv4,
            from: Array(world.nodes.prefix(8)), configuration: .init(), now: .zero)
        _ = Self.run(&lookup, world: world, silent: silent, random: &random)
        // The answers name only the 8 closest, the two silent ones among them: the other six come first, and
        // the result is made up with the nearest nodes that answered.
        let result = lookup.closestResponded.map(\.info)
        #expect(result.count == 8)
        #expect(Array(result.prefix(6)) == Array(truth[2..<8]))
        #expect(result.allSatisfy { !silent.contains($0.address) })
        #expect(lookup.result(now: .zero).timeouts >= 2)
    }

    @Test func boundedInQueriesTimeAndCandidates() {
        var random = SplitMix64(seed: 43)
        let world = World(nodes: H.randomNodes(3000, random: &random))
        var lookup = Lookup(
            id: LookupID(rawValue: 1), kind: .findNode, target: .random(using: &random), family: .ipv4,
            from: Array(world.nodes.prefix(30)), configuration: .init(maxCandidates: 20, maxQueries: 10), now: .zero)
        // Every node is silent: the lookup gives up after 10 queries.
        _ = Self.run(&lookup, world: world, silent: Set(world.nodes.map(\.address)), random: &random)
        #expect(lookup.searchDone)
        #expect(lookup.result(now: .zero).queries == 10)
        #expect(lookup.candidates.count <= 20)
        var slow = Lookup(
            id: LookupID(rawValue: 2), kind: .findNode, target: .random(using: &random), family: .ipv4,
            from: Array(world.nodes.prefix(8)), configuration: .init(maxDuration: .seconds(10)), now: .zero)
        _ = slow.nextQueries(now: .zero, budget: 100)
        #expect(!slow.searchDone)
        #expect(slow.nextQueries(now: .seconds(10), budget: 100).isEmpty)
        #expect(slow.searchDone)
    }

    @Test func aNodeAnsweringWithAnotherIDIsNotTrusted() {
        var random = SplitMix64(seed: 44)
        let start = H.randomNodes(3, random: &random)
        var lookup = Lookup(
            id: LookupID(rawValue: 1), kind: .getPeers, target: .random(using: &random), family: .ipv4, from: start,
            configuration: .init(), now: .zero)
        let queries = lookup.nextQueries(now: .zero, budget: 100)
        let liar = queries[0]
        let peers = lookup.responded(
            from: liar.address, id: .random(using: &random), nodes: H.randomNodes(8, random: &random, offset: 100),
            token: [1], values: [H.address(500)])
        #expect(peers.isEmpty)
        #expect(lookup.candidates.count == 3)
        // Peers from an honest node come once each, without port 0.
        let honest = queries[1]
        let found = lookup.responded(
            from: honest.address, id: honest.id!, nodes: [], token: [2],
            values: [H.address(500), H.address(500), NodeAddress(host: H.address(501).host, port: 0)])
        #expect(found == [H.address(500)])
    }
}
