import ShoalCore

/// Local Service Discovery (BEP 14) for the torrents of a session, as a pure state machine: which torrents
/// to announce when, and which received announces name a peer of ours. A runtime sends the datagrams to the
/// multicast groups and hands in what it receives, with the sender's address.
///
/// - **Announcing** (BEP 14 "Usage"): every torrent every ``Configuration/interval`` (5 minutes), and
///   never more than one announce per ``Configuration/minimumGap`` (a minute) in all; a torrent added is
///   announced as soon as the gap allows. One announce carries every torrent due that listens on the same
///   port, up to ``LocalDiscoveryAnnouncement/maxInfoHashes``; it goes to each group that is on.
/// - **Receiving**: a datagram that does not parse costs nothing; one with our cookie is our own, looped
///   back; a host is heard at most once per ``Configuration/hostInterval`` (a flood from one host costs a
///   parse per datagram, no more), among at most ``Configuration/maxHosts`` hosts remembered. Each
///   info-hash of ours in an announce names a peer: the sender's address with the announced port.
public struct LocalDiscovery: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var interval: Interval
        public var minimumGap: Interval
        /// The cookie of our announces.
        public var cookie: String
        public var hostInterval: Interval
        public var maxHosts: Int
        /// The groups announced to.
        public var groups: Set<Group>

        public init(
            cookie: String, interval: Interval = .seconds(300), minimumGap: Interval = .seconds(60),
            hostInterval: Interval = .seconds(1), maxHosts: Int = 256, groups: Set<Group> = [.ipv4, .ipv6]
        ) {
            self.cookie = cookie
            self.interval = interval
            self.minimumGap = minimumGap
            self.hostInterval = hostInterval
            self.maxHosts = maxHosts
            self.groups = groups
        }
    }

    /// The two multicast groups of BEP 14.
    public enum Group: Hashable, Sendable {
        case ipv4, ipv6
    }

    public enum Action: Hashable, Sendable {
        /// Send this datagram to the group.
        case send([UInt8], to: Group)
        /// A peer of one of our torrents announced itself here.
        case found(Digest20, PeerAddress)
    }

    struct Torrent: Sendable {
        var port: UInt16
        var due: Instant
    }

    public let configuration: Configuration
    private var torrents: [Digest20: Torrent] = [:]
    private var lastAnnounce: Instant?
    /// When each host was last heard.
    private var heard: [PeerAddress.Host: Instant] = [:]

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// A cookie for a session: eight hex digits of `random`.
    public static func cookie(using random: inout SplitMix64) -> String {
        let digits = String(UInt32(truncatingIfNeeded: random.next()), radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    public var torrentCount: Int { torrents.count }

    /// Announce this torrent (listening on `port`) from now on.
    public mutating func add(_ infoHash: Digest20, port: UInt16, now: Instant) -> [Action] {
        torrents[infoHash] = Torrent(port: port, due: now)
        return tick(now: now)
    }

    public mutating func remove(_ infoHash: Digest20) {
        torrents[infoHash] = nil
    }

    /// Announces what is due, if the gap since the last announce allows.
    public mutating func tick(now: Instant) -> [Action] {
        guard let sendAt = nextDeadline, now >= sendAt,
            let first = torrents.filter({ $0.value.due <= now }).min(by: { Self.earlier($0, $1) })
        else { return [] }
        let port = first.value.port
        let due = torrents.filter { $0.value.due <= now && $0.value.port == port }.sorted(by: Self.earlier)
            .prefix(LocalDiscoveryAnnouncement.maxInfoHashes).map(\.key)
        for hash in due { torrents[hash]?.due = now + configuration.interval }
        lastAnnounce = now
        return [Group.ipv4, .ipv6].filter(configuration.groups.contains).map { group in
            let announce = LocalDiscoveryAnnouncement(
                host: LocalDiscoveryAnnouncement.hostHeader(ipv6: group == .ipv6), port: port, infoHashes: due,
                cookie: configuration.cookie)
            return .send(announce.encoded, to: group)
        }
    }

    /// When ``tick(now:)`` next has an announce to send (nil: no torrent).
    public var nextDeadline: Instant? {
        guard let due = torrents.values.map(\.due).min() else { return nil }
        guard let lastAnnounce else { return due }
        return max(due, lastAnnounce + configuration.minimumGap)
    }

    /// A datagram arrived from `sender` (its address and UDP port).
    public mutating func received(_ datagram: [UInt8], from sender: PeerAddress.Host, now: Instant) -> [Action] {
        guard let announce = try? LocalDiscoveryAnnouncement(parsing: datagram),
            announce.cookie != configuration.cookie
        else { return [] }
        if let last = heard[sender], now < last + configuration.hostInterval { return [] }
        if heard[sender] == nil, heard.count >= configuration.maxHosts,
            let oldest = heard.min(by: { $0.value < $1.value })?.key
        {
            heard[oldest] = nil
        }
        heard[sender] = now
        return announce.infoHashes.filter { torrents[$0] != nil }.map {
            .found($0, PeerAddress(host: sender, port: announce.port))
        }
    }

    private static func earlier(_ a: (key: Digest20, value: Torrent), _ b: (key: Digest20, value: Torrent)) -> Bool {
        a.value.due != b.value.due ? a.value.due < b.value.due : a.key.bytes.lexicographicallyPrecedes(b.key.bytes)
    }
}
