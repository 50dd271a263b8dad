import ShoalCore

/// The server side of BEP 15 as a pure core: a datagram and its source in, the answer (if any) out,
/// the swarm registry updated.
///
/// - Connection ids are a MAC, not state: the top 16 bits are the minute (`window`) they were made in,
///   the low 48 bits SipHash of (secret, source address, that minute). An id is accepted for its minute
///   and the two after (at least two minutes, BEP 15: "trackers should accept the connection ID until two
///   minutes after it has been sent"), from the address it was given to; nothing is stored per client.
/// - Packets that are too short, connects without the protocol id, and requests with a wrong or expired
///   connection id are dropped without an answer (BEP 15: the tracker ignores them), so that a spoofed
///   source gets nothing. Connects are rate-limited per address.
/// - A request with a valid connection id that cannot be served (port 0, an info-hash outside the
///   allow-list, an unknown action) gets BEP 15's error packet.
public struct UDPTrackerServer: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// The length of a connection id's minute.
        public var window: Interval
        /// Windows an id is accepted in (its own and those after it).
        public var acceptedWindows: Int
        /// Peers in one answer at most: IPv4 (opentracker's 200: 1220 bytes) and IPv6 (79 fill a
        /// 1500-byte MTU over IPv6 without fragments).
        public var maxPeersIPv4: Int
        public var maxPeersIPv6: Int
        public var rateLimit: ConnectRateLimiter.Configuration

        public init(
            window: Interval = .seconds(60), acceptedWindows: Int = 3, maxPeersIPv4: Int = 200, maxPeersIPv6: Int = 79,
            rateLimit: ConnectRateLimiter.Configuration = .init()
        ) {
            self.window = window
            self.acceptedWindows = max(acceptedWindows, 1)
            self.maxPeersIPv4 = maxPeersIPv4
            self.maxPeersIPv6 = maxPeersIPv6
            self.rateLimit = rateLimit
        }
    }

    /// What the server did, for its statistics.
    public struct Counters: Hashable, Sendable {
        public var connects = 0
        public var announces = 0
        public var scrapes = 0
        public var errors = 0
        public var dropped = 0
        public var rateLimited = 0
        public init() {}
    }

    public let configuration: Configuration
    private let key: (UInt64, UInt64)
    private var limiter: ConnectRateLimiter
    public private(set) var counters = Counters()

    /// `secret`: two random words from the runtime (a new pair at each start makes old ids invalid).
    public init(configuration: Configuration = Configuration(), secret: (UInt64, UInt64), now: Instant) {
        self.configuration = configuration
        key = secret
        limiter = ConnectRateLimiter(
            configuration: configuration.rateLimit, key: (secret.1 ^ 0x5bd1_e995, secret.0 &+ 0x9e37_79b9), now: now)
    }

    /// Handles one datagram from `source`; appends the answer to `reply` and returns true when there is
    /// one to send back to `source`.
    public mutating func received(
        _ packet: UnsafeRawBufferPointer, from source: TrackerHost, now: Instant, registry: inout SwarmRegistry,
        reply: inout [UInt8]
    ) -> Bool {
        guard packet.count >= UDPTrackerRequest.connectSize else {
            counters.dropped += 1
            return false
        }
        let connectionID = packet.loadBigEndian(UInt64.self, at: 0)
        let action = packet.loadBigEndian(UInt32.self, at: 8)
        let transactionID = packet.loadBigEndian(UInt32.self, at: 12)
        let window = self.window(now)
        if action == UDPTrackerRequest.Action.connect.rawValue {
            guard connectionID == UDPTrackerRequest.protocolID else {
                counters.dropped += 1
                return false
            }
            guard limiter.allow(source, now: now) else {
                counters.rateLimited += 1
                return false
            }
            counters.connects += 1
            UDPTrackerResponse.writeConnect(
                transactionID: transactionID, connectionID: makeConnectionID(for: source, window: window), into: &reply)
            return true
        }
        guard isValid(connectionID, for: source, window: window) else {
            counters.dropped += 1
            return false
        }
        switch action {
        case UDPTrackerRequest.Action.announce.rawValue:
            guard packet.count >= UDPTrackerRequest.announceSize else {
                return error(transactionID, "announce of \(packet.count) bytes, 98 needed", into: &reply)
            }
            let announce = UDPAnnounce(packet)
            guard announce.port != 0 else { return error(transactionID, "invalid port 0", into: &reply) }
            let limit = source.isIPv6 ? configuration.maxPeersIPv6 : configuration.maxPeersIPv4
            reply.reserveCapacity(20 + limit * (source.isIPv6 ? 18 : 6))
            // The header's counts are known only after the announce: write a placeholder, fill it after.
            UDPTrackerResponse.writeAnnounceHeader(transactionID: transactionID, interval: 0, leechers: 0, seeders: 0, into: &reply)
            let counts: ScrapeCounts
            do {
                counts = try registry.announce(
                    SwarmRegistry.Announce(
                        infoHash: announce.infoHash, host: source, port: announce.port, event: announce.event,
                        left: announce.left, numWant: Int(announce.numWant)),
                    now: now, limit: limit, peers: &reply)
            } catch {
                reply.removeAll(keepingCapacity: true)
                return self.error(transactionID, error.description, into: &reply)
            }
            reply.withUnsafeMutableBytes { bytes in
                bytes.storeBytes(of: UInt32(clamping: registry.configuration.interval).bigEndian, toByteOffset: 8, as: UInt32.self)
                bytes.storeBytes(of: UInt32(clamping: counts.leechers).bigEndian, toByteOffset: 12, as: UInt32.self)
                bytes.storeBytes(of: UInt32(clamping: counts.seeders).bigEndian, toByteOffset: 16, as: UInt32.self)
            }
            counters.announces += 1
            return true
        case UDPTrackerRequest.Action.scrape.rawValue:
            counters.scrapes += 1
            reply.appendBigEndian(UDPTrackerRequest.Action.scrape.rawValue)
            reply.appendBigEndian(transactionID)
            let count = min((packet.count - 16) / 20, UDPTrackerRequest.maxScrapeHashes)
            for index in 0..<count {
                let counts = registry.counts(Bytes20(packet, at: 16 + 20 * index))
                reply.appendBigEndian(UInt32(clamping: counts?.seeders ?? 0))
                reply.appendBigEndian(UInt32(clamping: counts?.completed ?? 0))
                reply.appendBigEndian(UInt32(clamping: counts?.leechers ?? 0))
            }
            return true
        default:
            return error(transactionID, "unknown action \(action)", into: &reply)
        }
    }

    private mutating func error(_ transactionID: UInt32, _ message: String, into reply: inout [UInt8]) -> Bool {
        counters.errors += 1
        UDPTrackerResponse.writeError(transactionID: transactionID, message: message, into: &reply)
        return true
    }

    // MARK: - Connection ids

    @inline(__always)
    private func window(_ now: Instant) -> UInt16 {
        UInt16(truncatingIfNeeded: max(now.nanoseconds, 0) / max(configuration.window.nanoseconds, 1))
    }

    @inline(__always)
    private func makeConnectionID(for source: TrackerHost, window: UInt16) -> UInt64 {
        let (a, b, c) = source.hashWords
        let mac = SipHasher.hash(key0: key.0, key1: key.1, a, b, c | UInt64(window) << 16)
        return UInt64(window) << 48 | (mac & 0xFFFF_FFFF_FFFF)
    }

    /// Whether `connectionID` was made for `source` in this window or one of the `acceptedWindows − 1`
    /// before.
    @inline(__always)
    func isValid(_ connectionID: UInt64, for source: TrackerHost, window: UInt16) -> Bool {
        let issued = UInt16(truncatingIfNeeded: connectionID >> 48)
        guard Int(window &- issued) < configuration.acceptedWindows else { return false }
        return makeConnectionID(for: source, window: issued) == connectionID
    }
}
