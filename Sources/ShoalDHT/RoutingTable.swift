import ShoalCore

/// A Kademlia routing table of k-buckets as BEP 5 ("Routing Table") describes it.
///
/// Bucket `i` holds the nodes whose ids share exactly `i` leading bits with our own id; the last bucket holds
/// every node that shares at least as many, our own id included, and it is the only one that splits: a full
/// last bucket becomes two (BEP 5: "unless our own node ID falls within the range of the bucket"). So the
/// table is detailed near our own id and sparse far from it, with at most 160 buckets.
///
/// A full bucket takes a new node only in place of a bad one; otherwise the newcomer waits in the bucket's
/// replacement cache and the least recently seen questionable node is returned to be pinged, so that the
/// table keeps stable long-running nodes. Pure value type: time is passed in.
public struct RoutingTable: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// k: nodes per bucket (BEP 5: eight).
        public var bucketSize: Int
        /// Larger capacities for the first (farthest) buckets, as multiples of `bucketSize` (libtorrent's
        /// "extended routing table"): `[16, 8, 4, 2]` lets bucket 0 hold 128 nodes. Empty: k everywhere.
        public var farBucketMultipliers: [Int]
        /// Nodes waiting per bucket to replace a bad one.
        public var replacementCount: Int
        /// How long an answer keeps a node good (BEP 5: 15 minutes).
        public var goodFor: Interval
        /// Timeouts in a row after which a node is bad (BEP 5: "multiple queries in a row"; two).
        public var maxFailures: Int
        /// A bucket unchanged this long is refreshed (BEP 5: 15 minutes).
        public var refreshInterval: Interval
        /// At most one node per IP address in the table (libtorrent's `dht_restrict_routing_ips`), so that one
        /// host cannot fill it. Never applied to loopback addresses, where tests run many nodes on one host.
        public var oneNodePerIP: Bool
        /// A BEP 42-verified node may take the place of an unverified one in a full bucket.
        public var preferVerified: Bool

        public init(
            bucketSize: Int = 8, farBucketMultipliers: [Int] = [], replacementCount: Int = 8,
            goodFor: Interval = .seconds(15 * 60), maxFailures: Int = 2, refreshInterval: Interval = .seconds(15 * 60),
            oneNodePerIP: Bool = true, preferVerified: Bool = false
        ) {
            self.bucketSize = bucketSize
            self.farBucketMultipliers = farBucketMultipliers
            self.replacementCount = replacementCount
            self.goodFor = goodFor
            self.maxFailures = maxFailures
            self.refreshInterval = refreshInterval
            self.oneNodePerIP = oneNodePerIP
            self.preferVerified = preferVerified
        }

        /// What a ``DHTNode`` uses by default: the three farthest buckets hold 64, 32 and 16 nodes. The first
        /// step of a lookup then starts about six bits closer to its target (one round trip saved at 10^5 nodes
        /// in the simulator, for about 4 KB more per node); libtorrent's extended table goes to 128.
        public static let extended = Configuration(farBucketMultipliers: [8, 4, 2])
    }

    struct Bucket: Sendable {
        var nodes: [RoutingEntry] = []
        var replacements: [RoutingEntry] = []
        /// When a node was last added, replaced or heard from (BEP 5: the bucket's "last changed").
        var lastChanged: Instant
    }

    /// What became of a node that answered us.
    public enum Insertion: Hashable, Sendable {
        /// It was in the table already and is fresh again.
        case refreshed
        /// It took a free place, or a bad node's.
        case added
        /// Its bucket is full: it waits in the replacement cache; the questionable node to ping, if any.
        case cached(ping: NodeInfo?)
        /// Refused: our own id, or its address taken by another node.
        case refused
    }

    /// The configuration, shared by reference among tables (a simulation holds many).
    final class Settings: Sendable {
        let configuration: Configuration
        init(_ configuration: Configuration) { self.configuration = configuration }
    }

    public let ownID: NodeID
    let settings: Settings
    private(set) var buckets: [Bucket]

    public init(ownID: NodeID, configuration: Configuration = Configuration(), now: Instant) {
        self.init(ownID: ownID, settings: Settings(configuration), now: now)
    }

    init(ownID: NodeID, settings: Settings, now: Instant) {
        self.ownID = ownID
        self.settings = settings
        self.buckets = [Bucket(lastChanged: now)]
    }

    public var configuration: Configuration { settings.configuration }

    /// Nodes in the table (replacement caches not counted).
    public var count: Int { buckets.reduce(0) { $0 + $1.nodes.count } }
    /// Nodes waiting in replacement caches.
    public var replacementCount: Int { buckets.reduce(0) { $0 + $1.replacements.count } }
    public var bucketCount: Int { buckets.count }

    /// Every node in the table.
    public var entries: [RoutingEntry] { buckets.flatMap(\.nodes) }

    /// The capacity of bucket `index`.
    public func capacity(ofBucket index: Int) -> Int {
        index < configuration.farBucketMultipliers.count
            ? configuration.bucketSize * Swift.max(1, configuration.farBucketMultipliers[index]) : configuration.bucketSize
    }

    func bucketIndex(for id: NodeID) -> Int {
        Swift.min(ownID.commonPrefixLength(with: id), buckets.count - 1)
    }

    /// The entry for `id`, if the table holds it.
    public func entry(for id: NodeID) -> RoutingEntry? {
        buckets[bucketIndex(for: id)].nodes.first { $0.id == id }
    }

    public func contains(_ id: NodeID) -> Bool { entry(for: id) != nil }

    // MARK: Events

    /// A node answered one of our queries: refresh it, or enter it (BEP 5's insertion rules).
    public mutating func nodeResponded(_ node: NodeInfo, verified: Bool, now: Instant) -> Insertion {
        guard node.id != ownID else { return .refused }
        let index = bucketIndex(for: node.id)
        if let position = buckets[index].nodes.firstIndex(where: { $0.id == node.id }) {
            if buckets[index].nodes[position].address != node.address {
                // Another address claims a node we know: keep the one we know unless it stopped answering.
                guard buckets[index].nodes[position].failures > 0 else { return .refused }
                buckets[index].nodes[position].address = node.address
                buckets[index].nodes[position].verified = verified
            }
            buckets[index].nodes[position].lastSeen = now
            buckets[index].nodes[position].failures = 0
            buckets[index].lastChanged = now
            return .refreshed
        }
        // One node per address: a node that answers with a new id loses its old entry. One per IP address
        // (unless loopback): a second node on a host we know is refused, as libtorrent does. One pass over
        // the table finds both (this runs only for nodes not in the table yet).
        let restrictHost = configuration.oneNodePerIP && !node.address.host.isLoopback
        for bucket in buckets.indices {
            for entry in buckets[bucket].nodes {
                if entry.address == node.address {
                    remove(entry.id)
                } else if restrictHost && entry.address.host == node.address.host {
                    return .refused
                }
            }
        }
        return place(RoutingEntry(id: node.id, address: node.address, verified: verified, lastSeen: now), now: now)
    }

    /// Many nodes that answered, at once (a saved table, a simulator's steady state): as ``nodeResponded(_:verified:now:)``
    /// for each, with the address checks done against sets built once instead of a pass over the table per node.
    public mutating func nodesResponded(_ nodes: [NodeInfo], now: Instant) {
        var addresses = Set(buckets.flatMap { $0.nodes.map(\.address) })
        var hosts = Set(addresses.map(\.host))
        for node in nodes {
            if addresses.contains(node.address) || contains(node.id) {
                _ = nodeResponded(node, verified: false, now: now)
                continue
            }
            guard node.id != ownID else { continue }
            if configuration.oneNodePerIP && !node.address.host.isLoopback && hosts.contains(node.address.host) { continue }
            if case .added = place(RoutingEntry(id: node.id, address: node.address, verified: false, lastSeen: now), now: now) {
                addresses.insert(node.address)
                hosts.insert(node.address.host)
            }
        }
    }

    /// Enters a node that is not in the table: a free place (splitting the last bucket as needed), a bad node's
    /// place, or the replacement cache.
    private mutating func place(_ entry: RoutingEntry, now: Instant) -> Insertion {
        let node = entry.info
        let verified = entry.verified
        var index = bucketIndex(for: node.id)
        while true {
            if buckets[index].nodes.count < capacity(ofBucket: index) {
                buckets[index].nodes.append(entry)
                if let waiting = buckets[index].replacements.firstIndex(where: { $0.id == node.id }) {
                    buckets[index].replacements.remove(at: waiting)
                }
                buckets[index].lastChanged = now
                return .added
            }
            if index == buckets.count - 1 && buckets.count < NodeID.bitCount {
                split()
                index = bucketIndex(for: node.id)
                continue
            }
            break
        }
        // Full: a bad node gives way; with preferVerified a verified newcomer displaces an unverified node.
        let statuses = buckets[index].nodes.map {
            $0.status(now: now, goodFor: configuration.goodFor, maxFailures: configuration.maxFailures)
        }
        if let bad = statuses.firstIndex(of: .bad) {
            buckets[index].nodes[bad] = entry
            buckets[index].lastChanged = now
            return .added
        }
        if configuration.preferVerified && verified,
            let unverified = buckets[index].nodes.indices.filter({ !buckets[index].nodes[$0].verified })
                .min(by: { buckets[index].nodes[$0].lastSeen < buckets[index].nodes[$1].lastSeen })
        {
            let displaced = buckets[index].nodes[unverified]
            buckets[index].nodes[unverified] = entry
            buckets[index].lastChanged = now
            cache(displaced, in: index)
            return .added
        }
        cache(entry, in: index)
        // BEP 5: ping the least recently seen questionable node; if it fails twice it is replaced.
        let questionable = buckets[index].nodes.indices.filter { statuses[$0] == .questionable }
            .min { buckets[index].nodes[$0].lastSeen < buckets[index].nodes[$1].lastSeen }
        return .cached(ping: questionable.map { buckets[index].nodes[$0].info })
    }

    /// A node that answered us before sent us a query: it stays good (BEP 5). Returns whether it is in the
    /// table (a node we do not know has to answer a ping before it is entered).
    @discardableResult
    public mutating func nodeQueried(_ node: NodeInfo, now: Instant) -> Bool {
        let index = bucketIndex(for: node.id)
        guard let position = buckets[index].nodes.firstIndex(where: { $0.id == node.id && $0.address == node.address })
        else { return false }
        if buckets[index].nodes[position].failures == 0 { buckets[index].nodes[position].lastSeen = now }
        return true
    }

    /// Whether a node we do not know could be entered now (a free place, a place to split, or a node that is
    /// not good), so that it is worth a ping.
    public func wouldAccept(_ id: NodeID, now: Instant) -> Bool {
        guard id != ownID else { return false }
        let index = bucketIndex(for: id)
        let bucket = buckets[index]
        if bucket.nodes.contains(where: { $0.id == id }) { return false }
        if bucket.nodes.count < capacity(ofBucket: index) || index == buckets.count - 1 { return true }
        return bucket.nodes.contains {
            $0.status(now: now, goodFor: configuration.goodFor, maxFailures: configuration.maxFailures) != .good
        }
    }

    /// Whether a node we do not know would find a free place (or a bucket that can split) without displacing
    /// anyone.
    public func hasRoom(for id: NodeID) -> Bool {
        guard id != ownID else { return false }
        let index = bucketIndex(for: id)
        if buckets[index].nodes.contains(where: { $0.id == id }) { return false }
        return buckets[index].nodes.count < capacity(ofBucket: index)
            || (index == buckets.count - 1 && buckets.count < NodeID.bitCount)
    }

    /// One of our queries to `id` at `address` timed out. A node that turns bad is replaced by the freshest
    /// node of its bucket's replacement cache, if there is one. Returns the node's status after the failure,
    /// nil when it is not in the table.
    @discardableResult
    public mutating func nodeFailed(_ id: NodeID, address: NodeAddress, now: Instant) -> RoutingEntry.Status? {
        let index = bucketIndex(for: id)
        if let waiting = buckets[index].replacements.firstIndex(where: { $0.id == id }) {
            buckets[index].replacements.remove(at: waiting)
        }
        guard let position = buckets[index].nodes.firstIndex(where: { $0.id == id && $0.address == address })
        else { return nil }
        buckets[index].nodes[position].failures &+= 1
        let status = buckets[index].nodes[position].status(
            now: now, goodFor: configuration.goodFor, maxFailures: configuration.maxFailures)
        if status == .bad, let replacement = buckets[index].replacements.popLast() {
            buckets[index].nodes[position] = replacement
            buckets[index].lastChanged = now
        }
        return status
    }

    /// Removes a node (it answered with another id, or misbehaved).
    public mutating func remove(_ id: NodeID) {
        let index = bucketIndex(for: id)
        buckets[index].nodes.removeAll { $0.id == id }
        buckets[index].replacements.removeAll { $0.id == id }
    }

    // MARK: Queries

    /// Up to `count` nodes closest to `target` by XOR distance, closest first; bad nodes and nodes that are
    /// failing to answer are left out (BEP 5: "the K closest good nodes").
    public func closest(to target: NodeID, count: Int) -> [NodeInfo] {
        guard count > 0 else { return [] }
        // Bucket b (where the target falls) holds the closest nodes; then every deeper bucket; then b-1, b-2, ...
        // Each group is wholly closer than the next, so whole groups are gathered until there are enough.
        let b = bucketIndex(for: target)
        var gathered: [(distance: NodeID, index: Int, position: Int)] = []
        func gather(_ index: Int) {
            for (position, entry) in buckets[index].nodes.enumerated() where entry.failures == 0 {
                gathered.append((entry.id ^ target, index, position))
            }
        }
        gather(b)
        if gathered.count < count {
            for index in (b + 1)..<buckets.count { gather(index) }
        }
        var next = b - 1
        while gathered.count < count && next >= 0 {
            gather(next)
            next -= 1
        }
        gathered.sort { $0.distance < $1.distance }
        return gathered.prefix(count).map { buckets[$0.index].nodes[$0.position].info }
    }

    /// Buckets unchanged for the refresh interval, with a random target inside each (BEP 5: "picking a random
    /// ID in the range of the bucket and performing a find_nodes search on it"). Their clocks restart.
    public mutating func bucketsToRefresh(now: Instant, using random: inout some RandomNumberGenerator) -> [NodeID] {
        var targets: [NodeID] = []
        for index in buckets.indices where now - buckets[index].lastChanged >= configuration.refreshInterval {
            buckets[index].lastChanged = now
            targets.append(refreshTarget(bucket: index, using: &random))
        }
        return targets
    }

    /// A random id that falls in bucket `index`.
    func refreshTarget(bucket index: Int, using random: inout some RandomNumberGenerator) -> NodeID {
        if index == buckets.count - 1 { return ownID.randomSharingPrefix(index, using: &random) }
        // Share `index` bits with our id, then differ in the next one.
        let flipped = ownID ^ NodeID(high: 0, middle: 0, low: 0).settingBit(index)
        return flipped.randomSharingPrefix(index + 1, using: &random)
    }

    /// A random id in a bucket that is not full (nil when all are), chosen at random among them (the last one
    /// only when it is the only one: our neighbours come from our own lookups). Within it, the id falls in a
    /// sub-range (the next bits after the bucket's prefix) where the bucket has no node yet, so that the nodes
    /// named in the answer spread the bucket over its range.
    public func fillTarget(using random: inout some RandomNumberGenerator) -> NodeID? {
        let open = buckets.indices.filter { buckets[$0].nodes.count < capacity(ofBucket: $0) }
        let shallow = open.filter { $0 < buckets.count - 1 }
        guard let index = shallow.isEmpty ? open.first : shallow[Int(random.next() % UInt64(shallow.count))] else {
            return nil
        }
        let target = refreshTarget(bucket: index, using: &random)
        guard index < buckets.count - 1 else { return target }
        let occupied = Set(buckets[index].nodes.map { subrange(of: $0.id, inBucket: index) })
        let free = (0..<(1 << subrangeBits(ofBucket: index))).filter { !occupied.contains($0) }
        guard !free.isEmpty else { return target }
        return target.replacingBits(from: index + 1, count: subrangeBits(ofBucket: index), with: free[Int(random.next() % UInt64(free.count))])
    }

    /// Of nodes named in an answer, the ones worth a ping to enter the table, at most `limit`: those whose bucket
    /// has room, first those that fall in a sub-range of their bucket with no node yet, and at most one that
    /// does not. A bucket whose nodes all came from one answer would hold a cluster (the nodes nearest one id)
    /// and help lookups little: measured at 10^4 joined nodes, one round trip more than well spread buckets.
    public func nodesWorthLearning(_ nodes: [NodeInfo], limit: Int) -> [NodeInfo] {
        var chosen: [NodeInfo] = []
        var occupiedByBucket: [Int: Set<Int>] = [:]
        var crowded = 0
        for node in nodes where chosen.count < limit && hasRoom(for: node.id) {
            let index = bucketIndex(for: node.id)
            guard index < buckets.count - 1 else {
                chosen.append(node)
                continue
            }
            var occupied =
                occupiedByBucket[index] ?? Set(buckets[index].nodes.map { subrange(of: $0.id, inBucket: index) })
            if occupied.insert(subrange(of: node.id, inBucket: index)).inserted {
                chosen.append(node)
            } else if crowded == 0 {
                crowded += 1
                chosen.append(node)
            }
            occupiedByBucket[index] = occupied
        }
        return chosen
    }

    /// Bits that split bucket `index` into as many sub-ranges as it has places (3 for eight places).
    func subrangeBits(ofBucket index: Int) -> Int {
        min(Int.bitWidth - 1 - capacity(ofBucket: index).leadingZeroBitCount, NodeID.bitCount - index - 1)
    }

    /// Which sub-range of bucket `index` `id` falls in: its bits after the bucket's prefix.
    func subrange(of id: NodeID, inBucket index: Int) -> Int {
        var value = 0
        for bit in (index + 1)..<(index + 1 + subrangeBits(ofBucket: index)) { value = value << 1 | (id.bit(bit) ? 1 : 0) }
        return value
    }

    /// The least recently seen node of each bucket, if it is questionable (to ping in the background).
    public func questionableNodes(now: Instant) -> [NodeInfo] {
        buckets.compactMap { bucket in
            guard let oldest = bucket.nodes.min(by: { $0.lastSeen < $1.lastSeen }),
                oldest.status(now: now, goodFor: configuration.goodFor, maxFailures: configuration.maxFailures)
                    == .questionable
            else { return nil }
            return oldest.info
        }
    }

    // MARK: Internals

    /// Splits the last bucket: the nodes that share one more bit with our id move into a new last bucket.
    private mutating func split() {
        let last = buckets.count - 1
        var deeper = Bucket(lastChanged: buckets[last].lastChanged)
        let old = buckets[last]
        buckets[last].nodes = []
        buckets[last].replacements = []
        for entry in old.nodes {
            if ownID.commonPrefixLength(with: entry.id) > last { deeper.nodes.append(entry) } else { buckets[last].nodes.append(entry) }
        }
        for entry in old.replacements {
            if ownID.commonPrefixLength(with: entry.id) > last {
                deeper.replacements.append(entry)
            } else {
                buckets[last].replacements.append(entry)
            }
        }
        buckets.append(deeper)
        // A bucket that became shallower than its capacity takes waiting replacements.
        for index in [last, last + 1] {
            while buckets[index].nodes.count < capacity(ofBucket: index), let waiting = buckets[index].replacements.popLast() {
                buckets[index].nodes.append(waiting)
            }
        }
    }

    private mutating func cache(_ entry: RoutingEntry, in index: Int) {
        guard configuration.replacementCount > 0 else { return }
        buckets[index].replacements.removeAll { $0.id == entry.id || $0.address == entry.address }
        if buckets[index].replacements.count >= configuration.replacementCount {
            buckets[index].replacements.removeFirst()
        }
        buckets[index].replacements.append(entry)
    }

}
