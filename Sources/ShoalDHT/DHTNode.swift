import DequeModule
import HeapModule
import ShoalCore

/// A Mainline DHT node (BEP 5) as a pure core: datagrams and time in, actions out. No socket, no clock, no
/// system randomness: the runtime hands it datagrams with their source, the time, and a random generator of
/// its choosing (the system's on the network, a seeded one in the simulator), and executes the
/// ``DHTAction``s it returns (send a datagram, wake it at an instant, report lookups).
///
/// It keeps a routing table per address family (BEP 32: the IPv4 and IPv6 DHTs are separate, with the same
/// id), answers all four queries (ping, find_node, get_peers, announce_peer) with write tokens from a secret
/// rotated every five minutes, stores announced peers, and runs iterative lookups. BEP 42 (ids tied to the
/// external address), BEP 43 (read-only nodes) and BEP 32 (`nodes6`, `want`) are implemented. Everything is
/// bounded: table size (160 buckets), stored peers, pending queries, lookups, queries answered per second per
/// source and in total; a datagram that does not decode is dropped after its decoding.
public struct DHTNode<Random: RandomNumberGenerator & Sendable>: Sendable {
    public struct Configuration: Sendable {
        /// The DHTs the node takes part in (one socket each).
        public var families: [NodeAddress.Family]
        /// BEP 43: answer no queries, send `ro=1` in ours, so that other nodes leave us out of their tables.
        public var readOnly: Bool
        /// `v`: client id and version, sent in every message.
        public var version: [UInt8]
        public var routing: RoutingTable.Configuration
        public var lookup: Lookup.Configuration
        public var peerStore: PeerStore.Configuration
        public var limits: KRPCLimits
        /// A query unanswered this long has failed.
        public var queryTimeout: Interval
        /// The most queries of ours awaiting an answer.
        public var maxPendingQueries: Int
        /// The most lookups running at once (bucket refreshes included).
        public var maxLookups: Int
        /// How often the write token secret changes (BEP 5: five minutes).
        public var tokenRotation: Interval
        /// Queries answered per second per source IP (a burst of `perHostBurst` allowed).
        public var queriesPerSecondPerHost: Double
        public var perHostBurst: Double
        /// Queries answered per second in total.
        public var queriesPerSecond: Double
        /// Sources the rate limiter remembers.
        public var rateLimitedHosts: Int
        /// How often the node refreshes buckets, rotates tokens and expires peers.
        public var maintenanceInterval: Interval
        /// How often a bucket that is not full is filled while that brings nodes; while it does not, the pause
        /// doubles up to `maxBucketFillInterval`.
        public var bucketFillInterval: Interval
        public var maxBucketFillInterval: Interval
        /// BEP 42: when the external address is known (from `ip` fields), take an id that conforms to it.
        public var secureNodeID: Bool
        /// BEP 42: leave nodes whose id does not conform to their address out of the routing table.
        public var enforceSecureIDs: Bool
        /// Distinct nodes that must report the same external address before it is believed.
        public var externalAddressVotes: Int
        /// The most peers in one get_peers answer (the datagram stays near 1024 bytes, BEP 32).
        public var maxValuesPerReply: Int

        public init(
            families: [NodeAddress.Family] = [.ipv4], readOnly: Bool = false,
            version: [UInt8] = [UInt8(ascii: "S"), UInt8(ascii: "H"), 0, 1],
            routing: RoutingTable.Configuration = .extended,
            lookup: Lookup.Configuration = Lookup.Configuration(),
            peerStore: PeerStore.Configuration = PeerStore.Configuration(), limits: KRPCLimits = .standard,
            queryTimeout: Interval = .seconds(5), maxPendingQueries: Int = 256, maxLookups: Int = 32,
            tokenRotation: Interval = .seconds(300), queriesPerSecondPerHost: Double = 20, perHostBurst: Double = 50,
            queriesPerSecond: Double = 2000, rateLimitedHosts: Int = 4096, maintenanceInterval: Interval = .seconds(30),
            bucketFillInterval: Interval = .seconds(5), maxBucketFillInterval: Interval = .seconds(60),
            secureNodeID: Bool = true, enforceSecureIDs: Bool = false, externalAddressVotes: Int = 3,
            maxValuesPerReply: Int = 50
        ) {
            self.families = families
            self.readOnly = readOnly
            self.version = version
            self.routing = routing
            self.lookup = lookup
            self.peerStore = peerStore
            self.limits = limits
            self.queryTimeout = queryTimeout
            self.maxPendingQueries = maxPendingQueries
            self.maxLookups = maxLookups
            self.tokenRotation = tokenRotation
            self.queriesPerSecondPerHost = queriesPerSecondPerHost
            self.perHostBurst = perHostBurst
            self.queriesPerSecond = queriesPerSecond
            self.rateLimitedHosts = rateLimitedHosts
            self.maintenanceInterval = maintenanceInterval
            self.bucketFillInterval = bucketFillInterval
            self.maxBucketFillInterval = maxBucketFillInterval
            self.secureNodeID = secureNodeID
            self.enforceSecureIDs = enforceSecureIDs
            self.externalAddressVotes = externalAddressVotes
            self.maxValuesPerReply = maxValuesPerReply
        }
    }

    /// A configuration shared by reference: a simulation holds many nodes with one configuration.
    public final class SharedConfiguration: Sendable {
        public let configuration: Configuration
        let families: Set<NodeAddress.Family>
        let routing: RoutingTable.Settings
        public init(_ configuration: Configuration) {
            self.configuration = configuration
            self.families = Set(configuration.families)
            self.routing = RoutingTable.Settings(configuration.routing)
        }
    }

    struct Transaction: Sendable {
        enum Purpose: Sendable {
            /// A ping: to confirm a node before entering it, or a questionable node in the table.
            case ping
            case lookup(LookupID)
            case announce(LookupID)
            /// A find_node into a bucket that is not full, whose answer's nodes are pinged to fill it.
            case fill
        }
        var address: NodeAddress
        var expectedID: NodeID?
        var purpose: Purpose
        var serial: UInt32
        var sentAt: Instant
    }

    struct Deadline: Sendable, Comparable {
        var transaction: UInt32
        var serial: UInt32
        var time: Instant

        static func < (lhs: Deadline, rhs: Deadline) -> Bool { (lhs.time, lhs.serial) < (rhs.time, rhs.serial) }
        static func == (lhs: Deadline, rhs: Deadline) -> Bool { lhs.time == rhs.time && lhs.serial == rhs.serial }
    }

    public internal(set) var id: NodeID
    private(set) var settings: SharedConfiguration
    var random: Random
    var table4: RoutingTable
    var table6: RoutingTable
    var transactions: [UInt32: Transaction] = [:]
    var hardDeadlines: Deque<Deadline> = []
    /// Soft timeouts follow the measured round-trip time, so they are not in sending order: a heap.
    var softDeadlines = Heap<Deadline>()
    /// Smoothed round-trip time of our queries (RFC 6298's estimator), for the soft timeout.
    public internal(set) var smoothedRoundTrip: Interval?
    var nextSerial: UInt32 = 0
    var lookups: [LookupID: Lookup] = [:]
    var nextLookupID: UInt32 = 1
    var peerStore: PeerStore
    var tokens: WriteTokens
    var limiter: QueryRateLimiter
    var votes: ExternalAddressVotes
    var nextMaintenance: Instant
    /// When the next bucket fill is due, and the pause after it (5 s while fills bring nodes, up to 15 min).
    var nextFill: Instant
    var fillInterval: Interval
    /// The wake-up last asked of the runtime (nil: none pending).
    var scheduled: Instant?
    /// Where the node joins from when its table is empty: bootstrap routers, saved nodes.
    var bootstrapAddresses: [NodeAddress] = []
    var savedNodes: [NodeInfo] = []
    public internal(set) var statistics = DHTStatistics()
    /// Our address as other nodes see it (BEP 42 `ip` fields, by vote).
    public internal(set) var externalAddress: NodeAddress.Host?

    public var configuration: Configuration { settings.configuration }

    /// A node with `id` (nil: a random one).
    public init(configuration: Configuration = Configuration(), id: NodeID? = nil, random: Random, now: Instant) {
        self.init(shared: SharedConfiguration(configuration), id: id, random: random, now: now)
    }

    /// A node whose configuration is shared with others (the simulator's many nodes).
    public init(shared: SharedConfiguration, id: NodeID? = nil, random: Random, now: Instant) {
        let configuration = shared.configuration
        var random = random
        let id = id ?? NodeID.random(using: &random)
        self.id = id
        self.settings = shared
        self.table4 = RoutingTable(ownID: id, settings: shared.routing, now: now)
        self.table6 = RoutingTable(ownID: id, settings: shared.routing, now: now)
        self.peerStore = PeerStore(configuration: configuration.peerStore)
        self.tokens = WriteTokens(using: &random, now: now)
        self.limiter = QueryRateLimiter(
            configuration: .init(
                perHostRate: configuration.queriesPerSecondPerHost, perHostBurst: configuration.perHostBurst,
                totalRate: configuration.queriesPerSecond, totalBurst: configuration.queriesPerSecond,
                maxHosts: configuration.rateLimitedHosts),
            now: now)
        self.votes = ExternalAddressVotes(required: configuration.externalAddressVotes)
        self.nextMaintenance = now + configuration.maintenanceInterval
        self.fillInterval = configuration.bucketFillInterval
        self.nextFill = now + configuration.bucketFillInterval
        self.random = random
    }

    /// A node that resumes from a saved state: its id, and its saved nodes to rejoin through.
    public init(configuration: Configuration = Configuration(), state: DHTState, random: Random, now: Instant) {
        self.init(configuration: configuration, id: state.id, random: random, now: now)
        savedNodes = state.nodes
    }

    // MARK: Inspection

    /// The routing table of one family.
    public func table(_ family: NodeAddress.Family) -> RoutingTable { family == .ipv4 ? table4 : table6 }

    /// Nodes in the routing tables (both families).
    public var nodeCount: Int { table4.count + table6.count }

    /// Queries of ours awaiting an answer.
    public var pendingQueries: Int { transactions.count }

    /// Lookups running.
    public var activeLookups: Int { lookups.count }

    /// Peers stored for other nodes.
    public var storedPeers: Int { peerStore.count }

    /// What to save so that a restart rejoins without bootstrap: our id and the nodes of our tables.
    public var state: DHTState {
        DHTState(id: id, nodes: table4.entries.map(\.info) + table6.entries.map(\.info))
    }

    /// The next instant the node needs a tick.
    public var nextDeadline: Instant {
        var next = min(nextMaintenance, nextFill)
        if let first = hardDeadlines.first, first.time < next { next = first.time }
        if let first = softDeadlines.min, first.time < next { next = first.time }
        return next
    }

    mutating func table(for family: NodeAddress.Family, _ body: (inout RoutingTable) -> Void) {
        if family == .ipv4 { body(&table4) } else { body(&table6) }
    }

    func enabled(_ family: NodeAddress.Family) -> Bool { settings.families.contains(family) }

    /// Enters nodes as if each had just answered a query (through the table's usual rules). For a simulator
    /// that starts from a DHT in its steady state; a real node learns nodes only from their answers.
    public mutating func insertAnsweredNodes(_ nodes: [NodeInfo], now: Instant) {
        table4.nodesResponded(nodes.filter { $0.address.family == .ipv4 }, now: now)
        table6.nodesResponded(nodes.filter { $0.address.family == .ipv6 }, now: now)
    }

    /// Takes families out of service (their socket could not be opened); before ``start(bootstrap:now:)``.
    public mutating func removeFamilies(where unavailable: (NodeAddress.Family) -> Bool) {
        var configuration = settings.configuration
        configuration.families.removeAll(where: unavailable)
        settings = SharedConfiguration(configuration)
    }
}
