import ShoalCore
import Testing

@testable import ShoalDHT

@Suite("Routing table")
struct RoutingTableTests {
    static func address(_ index: Int) -> NodeAddress {
        NodeAddress(host: .init(ipv4: 0x0A00_0000 | UInt32(index)), port: 6881)
    }

    /// An id sharing exactly `prefix` leading bits with `own`.
    static func id(sharing prefix: Int, with own: NodeID, random: inout SplitMix64) -> NodeID {
        own.settingBit(prefix) == own
            ? (own ^ NodeID.zero.settingBit(prefix)).randomSharingPrefix(prefix + 1, using: &random)
            : own.settingBit(prefix).randomSharingPrefix(prefix + 1, using: &random)
    }

    @Test func onlyTheBucketHoldingOurIDSplits() {
        var random = SplitMix64(seed: 11)
        let own = NodeID.random(using: &random)
        var table = RoutingTable(ownID: own, now: .zero)
        for index in 0..<5000 {
            _ = table.nodeResponded(NodeInfo(id: .random(using: &random), address: Self.address(index)), verified: false, now: .zero)
        }
        // Random ids fall in bucket i with probability 2^-(i+1): the far buckets are full, at 8.
        #expect(table.bucketCount > 8)
        #expect(table.bucketCount < 20)
        for index in 0..<table.bucketCount {
            let bucket = table.buckets[index]
            #expect(bucket.nodes.count <= 8)
            for entry in bucket.nodes {
                let shared = own.commonPrefixLength(with: entry.id)
                if index < table.bucketCount - 1 { #expect(shared == index) } else { #expect(shared >= index) }
            }
        }
        #expect(table.buckets[0].nodes.count == 8)
        #expect(table.buckets[0].replacements.count == 8)
        #expect(table.count <= 8 * table.bucketCount)
        // Nodes far away never split the table: 1000 more in bucket 0 change nothing but the cache.
        let before = table.bucketCount
        for index in 0..<1000 {
            let id = Self.id(sharing: 0, with: own, random: &random)
            _ = table.nodeResponded(NodeInfo(id: id, address: Self.address(10_000 + index)), verified: false, now: .zero)
        }
        #expect(table.bucketCount == before)
    }

    @Test func closestMatchesBruteForce() {
        var random = SplitMix64(seed: 12)
        let own = NodeID.random(using: &random)
        var table = RoutingTable(ownID: own, now: .zero)
        for index in 0..<3000 {
            _ = table.nodeResponded(NodeInfo(id: .random(using: &random), address: Self.address(index)), verified: false, now: .zero)
        }
        let all = table.entries
        for round in 0..<300 {
            // Random targets, and targets near our id (the deep buckets).
            let target = round % 2 == 0 ? NodeID.random(using: &random) : own.randomSharingPrefix(round % 40, using: &random)
            for count in [1, 8, 20] {
                let expected = all.sorted { ($0.id ^ target) < ($1.id ^ target) }.prefix(count).map(\.info)
                #expect(table.closest(to: target, count: count) == Array(expected))
            }
        }
    }

    @Test func fullBucketCachesNewcomersAndPingsTheQuestionable() {
        var random = SplitMix64(seed: 13)
        let own = NodeID.zero
        var table = RoutingTable(ownID: own, now: .zero)
        // Eight nodes in bucket 0 (ids starting with a 1 bit), plus one of our own half so that bucket 0 exists.
        _ = table.nodeResponded(NodeInfo(id: Self.id(sharing: 1, with: own, random: &random), address: Self.address(999)), verified: false, now: .zero)
        var farNodes: [NodeInfo] = []
        for index in 0..<8 {
            let node = NodeInfo(id: Self.id(sharing: 0, with: own, random: &random), address: Self.address(index))
            farNodes.append(node)
            #expect(table.nodeResponded(node, verified: false, now: .seconds(Double(index))) == .added)
        }
        #expect(table.bucketCount >= 2)
        let newcomer = NodeInfo(id: Self.id(sharing: 0, with: own, random: &random), address: Self.address(100))
        // All good: the newcomer waits, nobody is pinged.
        #expect(table.nodeResponded(newcomer, verified: false, now: .seconds(60)) == .cached(ping: nil))
        #expect(!table.contains(newcomer.id))
        // Fifteen minutes later all are questionable: the least recently seen one is to be pinged.
        let later = Instant.seconds(16 * 60)
        let other = NodeInfo(id: Self.id(sharing: 0, with: own, random: &random), address: Self.address(101))
        #expect(table.nodeResponded(other, verified: false, now: later) == .cached(ping: farNodes[0]))
        // It fails twice: bad, and the freshest waiting node takes its place.
        #expect(table.nodeFailed(farNodes[0].id, address: farNodes[0].address, now: later) == .questionable)
        #expect(table.nodeFailed(farNodes[0].id, address: farNodes[0].address, now: later) == .bad)
        #expect(!table.contains(farNodes[0].id))
        #expect(table.contains(other.id))
        // A node failing is left out of answers.
        _ = table.nodeFailed(farNodes[1].id, address: farNodes[1].address, now: later)
        #expect(!table.closest(to: farNodes[1].id, count: 8).contains(farNodes[1]))
        // An answer makes it good again.
        #expect(table.nodeResponded(farNodes[1], verified: false, now: later) == .refreshed)
        #expect(table.closest(to: farNodes[1].id, count: 1) == [farNodes[1]])
    }

    @Test func queriesKeepKnownNodesGood() {
        var random = SplitMix64(seed: 14)
        var table = RoutingTable(ownID: .random(using: &random), now: .zero)
        let node = NodeInfo(id: .random(using: &random), address: Self.address(1))
        _ = table.nodeResponded(node, verified: false, now: .zero)
        let config = table.configuration
        #expect(table.entry(for: node.id)?.status(now: .seconds(20 * 60), goodFor: config.goodFor, maxFailures: 2) == .questionable)
        let known = table.nodeQueried(node, now: .seconds(10 * 60))
        #expect(known)
        #expect(table.entry(for: node.id)?.status(now: .seconds(20 * 60), goodFor: config.goodFor, maxFailures: 2) == .good)
        // A query from an unknown node, or from a known id at another address, does not count.
        let unknown = table.nodeQueried(NodeInfo(id: .random(using: &random), address: Self.address(2)), now: .zero)
        let moved = table.nodeQueried(NodeInfo(id: node.id, address: Self.address(3)), now: .zero)
        #expect(!unknown)
        #expect(!moved)
    }

    @Test func addressRules() {
        var random = SplitMix64(seed: 15)
        var table = RoutingTable(ownID: .random(using: &random), now: .zero)
        let node = NodeInfo(id: .random(using: &random), address: NodeAddress("198.51.100.1:6881")!)
        #expect(table.nodeResponded(node, verified: false, now: .zero) == .added)
        // Another address claiming its id is refused while it answers.
        #expect(table.nodeResponded(NodeInfo(id: node.id, address: NodeAddress("198.51.100.2:6881")!), verified: false, now: .zero) == .refused)
        // A second node on the same IP is refused (one node per IP)...
        let sameHost = NodeInfo(id: .random(using: &random), address: NodeAddress("198.51.100.1:6882")!)
        #expect(table.nodeResponded(sameHost, verified: false, now: .zero) == .refused)
        // ... but the same address answering with a new id replaces the old entry (the node restarted).
        let restarted = NodeInfo(id: .random(using: &random), address: node.address)
        #expect(table.nodeResponded(restarted, verified: false, now: .zero) == .added)
        #expect(!table.contains(node.id))
        // Loopback is exempt: tests run many nodes on one host.
        for port in 1...5 {
            let local = NodeInfo(id: .random(using: &random), address: NodeAddress("127.0.0.1:\(port)")!)
            #expect(table.nodeResponded(local, verified: false, now: .zero) == .added)
        }
        // Our own id never enters.
        #expect(table.nodeResponded(NodeInfo(id: table.ownID, address: Self.address(9)), verified: false, now: .zero) == .refused)
    }

    @Test func verifiedNodesArePreferredWhenConfigured() {
        var random = SplitMix64(seed: 16)
        let own = NodeID.zero
        var table = RoutingTable(ownID: own, configuration: .init(preferVerified: true), now: .zero)
        _ = table.nodeResponded(NodeInfo(id: Self.id(sharing: 1, with: own, random: &random), address: Self.address(999)), verified: false, now: .zero)
        for index in 0..<8 {
            _ = table.nodeResponded(NodeInfo(id: Self.id(sharing: 0, with: own, random: &random), address: Self.address(index)), verified: false, now: .zero)
        }
        let verified = NodeInfo(id: Self.id(sharing: 0, with: own, random: &random), address: Self.address(50))
        #expect(table.nodeResponded(verified, verified: true, now: .seconds(1)) == .added)
        #expect(table.entry(for: verified.id)?.verified == true)
        #expect(table.buckets[0].nodes.count == 8)
        #expect(table.buckets[0].replacements.count == 1)
    }

    @Test func farBucketsCanHoldMore() {
        var random = SplitMix64(seed: 17)
        let own = NodeID.random(using: &random)
        var table = RoutingTable(ownID: own, configuration: .init(farBucketMultipliers: [16, 8, 4, 2]), now: .zero)
        for index in 0..<20_000 {
            _ = table.nodeResponded(NodeInfo(id: .random(using: &random), address: Self.address(index)), verified: false, now: .zero)
        }
        #expect(table.buckets[0].nodes.count == 128)
        #expect(table.buckets[1].nodes.count == 64)
        #expect(table.buckets[2].nodes.count == 32)
        #expect(table.buckets[3].nodes.count == 16)
        #expect(table.buckets[4].nodes.count == 8)
    }

    @Test func refreshTargetsFallInTheirBuckets() {
        var random = SplitMix64(seed: 18)
        var table = RoutingTable(ownID: .random(using: &random), now: .zero)
        for index in 0..<2000 {
            _ = table.nodeResponded(NodeInfo(id: .random(using: &random), address: Self.address(index)), verified: false, now: .zero)
        }
        for bucket in 0..<table.bucketCount {
            for _ in 0..<20 {
                #expect(table.bucketIndex(for: table.refreshTarget(bucket: bucket, using: &random)) == bucket)
            }
        }
        // Nothing is due before 15 minutes; then every bucket, once.
        #expect(table.bucketsToRefresh(now: .seconds(60), using: &random).isEmpty)
        #expect(table.bucketsToRefresh(now: .seconds(15 * 60), using: &random).count == table.bucketCount)
        #expect(table.bucketsToRefresh(now: .seconds(15 * 60 + 1), using: &random).isEmpty)
    }
}
