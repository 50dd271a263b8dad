import ShoalCore
import ShoalDHT

/// Many real ``DHTNode`` cores over simulated UDP, in virtual time: the same core that runs on the network,
/// driven by the same actions (send a datagram, wake me at an instant, a lookup finished), deterministic from
/// the seed. Used by the tests and by `bench/dht` to check that lookups converge on the true closest nodes
/// and to measure their latency, hops and messages at sizes no real testbed reaches.
///
/// The network: node `i` is `10.x.y.z:6881` (`i + 1` in the low 24 bits), with an access link of its own
/// one-way latency; a datagram crosses the sender's and the receiver's links, and is lost with the
/// configured probability. A node that left drops everything sent to it and sends nothing.
///
/// Not thread-safe: one simulation runs on one thread.
public final class DHTSimulation {
    public typealias Node = DHTNode<SplitMix64>

    public struct Configuration {
        public var seed: UInt64
        /// One-way delay of each node's access link: two nodes are twice this apart, one way.
        public var latency: Interval
        /// Each node's latency is drawn uniformly from `latency ... latency + latencySpread`.
        public var latencySpread: Interval
        /// The chance that a datagram is lost.
        public var loss: Double
        public var node: Node.Configuration

        public init(
            seed: UInt64, latency: Interval = .milliseconds(25), latencySpread: Interval = .zero, loss: Double = 0,
            node: Node.Configuration = Node.Configuration()
        ) {
            self.seed = seed
            self.latency = latency
            self.latencySpread = latencySpread
            self.loss = loss
            self.node = node
        }
    }

    enum Event {
        case deliver(from: Int32, to: Int32, datagram: [UInt8])
        case tick(Int32)
        case join(Int32, bootstrap: Int32)
    }

    struct SimNode {
        var core: Node
        var latency: Interval
        var alive = true
        /// The one tick that counts (ticks scheduled for other times are stale).
        var nextTick: Instant?
    }

    /// A lookup started through the simulation, and what it found.
    public struct LookupRecord: Sendable {
        public var node: Int
        public var started: Instant
        public var result: LookupResult?
    }

    public let configuration: Configuration
    public private(set) var now = Instant.zero
    public private(set) var eventsProcessed = 0
    public private(set) var datagramsSent = 0
    public private(set) var datagramsLost = 0
    let shared: Node.SharedConfiguration
    var nodes: [SimNode] = []
    var queue = EventQueue<Event>()
    var random: SplitMix64
    /// Lookups started with ``startLookup(_:target:from:)``, by node and lookup id.
    var watched: [Int: [LookupID: Int]] = [:]
    public private(set) var lookups: [LookupRecord] = []
    /// Peers that get_peers lookups reported, per record.
    public private(set) var peersFound: [Int: [PeerAddress]] = [:]

    /// `count` nodes with random ids, none joined yet.
    public init(configuration: Configuration, nodeCount count: Int) {
        precondition(count > 0 && count < 1 << 24, "1 to 2^24 - 1 nodes")
        self.configuration = configuration
        var node = configuration.node
        node.families = [.ipv4]
        self.shared = Node.SharedConfiguration(node)
        self.random = SplitMix64(seed: configuration.seed)
        nodes.reserveCapacity(count)
        let spread = configuration.latencySpread.nanoseconds
        for _ in 0..<count {
            let latency = configuration.latency + .nanoseconds(spread > 0 ? Int64(random.next() % UInt64(spread + 1)) : 0)
            let core = Node(shared: shared, random: SplitMix64(seed: random.next()), now: .zero)
            nodes.append(SimNode(core: core, latency: latency))
        }
    }

    public var nodeCount: Int { nodes.count }

    /// The address of node `index`.
    public static func address(of index: Int) -> NodeAddress {
        NodeAddress(host: .init(ipv4: 0x0A00_0000 | UInt32(index + 1)), port: 6881)
    }

    /// The node at `address`, if it is one of ours.
    public func index(of address: NodeAddress) -> Int? {
        guard address.family == .ipv4, address.port == 6881 else { return nil }
        let low = Int(address.host.low)
        let index = low - 0x0A00_0001
        return (0..<nodes.count).contains(index) && low >> 24 == 0x0A ? index : nil
    }

    public func core(_ index: Int) -> Node { nodes[index].core }
    public func isAlive(_ index: Int) -> Bool { nodes[index].alive }
    public var aliveCount: Int { nodes.reduce(0) { $0 + ($1.alive ? 1 : 0) } }

    // MARK: - Building the DHT

    /// Joins the nodes through the protocol, one every `interval`: node 0 starts alone, each later node
    /// bootstraps from a random node that joined before it (BEP 5: a find_node lookup for its own id).
    public func scheduleJoins(every interval: Interval, startingAt start: Instant? = nil) {
        let first = start ?? now
        for index in nodes.indices {
            let bootstrap = index == 0 ? -1 : Int32(random.next(upTo: index))
            queue.schedule(.join(Int32(index), bootstrap: bootstrap), at: first + interval * Int64(index))
        }
    }

    // MARK: - Lookups

    /// Starts a lookup at node `index`; its result is recorded in ``lookups``. Returns the record's index,
    /// nil when the node could not start one.
    @discardableResult
    public func startLookup(_ kind: Lookup.Kind, target: NodeID, from index: Int) -> Int? {
        guard nodes[index].alive else { return nil }
        let (id, actions) = nodes[index].core.startLookup(kind, target: target, family: .ipv4, now: now)
        guard let id else { return nil }
        let record = lookups.count
        lookups.append(LookupRecord(node: index, started: now))
        watched[index, default: [:]][id] = record
        execute(actions, of: index)
        return record
    }

    /// Lookups started and not yet finished.
    public var pendingLookups: Int { watched.values.reduce(0) { $0 + $1.count } }

    /// Nodes leave at once, without a word (as a process that is killed or a host that goes offline).
    public func leave(_ indices: some Sequence<Int>) {
        for index in indices {
            nodes[index].alive = false
            nodes[index].nextTick = nil
            if let pending = watched.removeValue(forKey: index) {
                for record in pending.values { lookups[record].result = nil }
            }
        }
    }

    /// The `count` alive nodes closest to `target`, by brute force over every node.
    public func trueClosest(to target: NodeID, count: Int) -> [NodeInfo] {
        var best: [(distance: NodeID, index: Int)] = []
        best.reserveCapacity(count + 1)
        for index in nodes.indices where nodes[index].alive {
            let distance = nodes[index].core.id ^ target
            if best.count == count, let last = best.last, !(distance < last.distance) { continue }
            var position = best.count
            while position > 0 && distance < best[position - 1].distance { position -= 1 }
            best.insert((distance, index), at: position)
            if best.count > count { best.removeLast() }
        }
        return best.map { NodeInfo(id: nodes[$0.index].core.id, address: Self.address(of: $0.index)) }
    }

    // MARK: - Running

    /// Processes events up to `time` (inclusive); the clock ends at `time`.
    public func run(until time: Instant) {
        while let next = queue.nextTime, next <= time {
            let (eventTime, event) = queue.pop()!
            now = eventTime
            process(event)
        }
        if time > now { now = time }
    }

    /// Runs until every watched lookup has finished, or `limit` of virtual time has passed.
    public func runUntilLookupsFinish(limit: Interval) {
        let end = now + limit
        while pendingLookups > 0, let next = queue.nextTime, next <= end {
            let (eventTime, event) = queue.pop()!
            now = eventTime
            process(event)
        }
    }

    private func process(_ event: Event) {
        eventsProcessed += 1
        switch event {
        case .deliver(let from, let to, let datagram):
            let index = Int(to)
            guard nodes[index].alive else { return }
            let actions = nodes[index].core.received(datagram, from: Self.address(of: Int(from)), now: now)
            execute(actions, of: index)
        case .tick(let node):
            let index = Int(node)
            guard nodes[index].alive, nodes[index].nextTick == now else { return }
            nodes[index].nextTick = nil
            execute(nodes[index].core.tick(now: now), of: index)
        case .join(let node, let bootstrap):
            let index = Int(node)
            guard nodes[index].alive else { return }
            let addresses = bootstrap >= 0 ? [Self.address(of: Int(bootstrap))] : []
            execute(nodes[index].core.start(bootstrap: addresses, now: now).1, of: index)
        }
    }

    private func execute(_ actions: [DHTAction], of index: Int) {
        for action in actions {
            switch action {
            case .send(let datagram, let destination):
                datagramsSent += 1
                guard let target = self.index(of: destination) else { continue }
                if configuration.loss > 0 && Double(random.next() >> 11) / Double(1 << 53) < configuration.loss {
                    datagramsLost += 1
                    continue
                }
                let arrival = now + nodes[index].latency + nodes[target].latency
                queue.schedule(.deliver(from: Int32(index), to: Int32(target), datagram: datagram), at: arrival)
            case .schedule(let time):
                let at = max(time, now)
                if nodes[index].nextTick != at {
                    nodes[index].nextTick = at
                    queue.schedule(.tick(Int32(index)), at: at)
                }
            case .peersFound(let lookup, _, let peers):
                if let record = watched[index]?[lookup] { peersFound[record, default: []] += peers }
            case .lookupFinished(let result):
                if let record = watched[index]?.removeValue(forKey: result.id) {
                    lookups[record].result = result
                    if watched[index]?.isEmpty == true { watched[index] = nil }
                }
            case .nodeIDChanged:
                break
            }
        }
    }
}
