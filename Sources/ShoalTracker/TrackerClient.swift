import ShoalCore

/// The announce side of one torrent: which trackers to tell what, and when (BEP 3, 12, 15). The logic
/// is ``TrackerClient/StateMachine``; this holds its vocabulary.
public enum TrackerClient {
    public struct Configuration: Hashable, Sendable {
        public var infoHash: Bytes20
        public var peerID: Bytes20
        /// The TCP port we listen on.
        public var port: UInt16
        /// BEP 7's key: 32 random bits, the same for the whole session.
        public var key: UInt32
        /// Peers asked for in each announce (0 when stopping).
        public var numWant: Int32
        /// Announce to one tracker of every tier (as uTorrent and qBittorrent do by default), instead of
        /// BEP 12's strict order where a later tier is tried only when every tracker of the earlier ones
        /// failed. Trackers given on the command line are tiers of their own, so this is what makes them
        /// announced to alongside the torrent's.
        public var announceToAllTiers: Bool
        /// Used when a tracker gives no interval.
        public var defaultInterval: Interval
        /// A tracker's interval is kept within these (a hostile or broken tracker must not make us
        /// announce every second, nor never again).
        public var minimumInterval: Interval
        public var maximumInterval: Interval
        /// After a round in which every tracker failed: wait `retryBase`·2^(rounds−1), at most `retryMax`.
        public var retryBase: Interval
        public var retryMax: Interval
        /// UDP retransmissions (BEP 15).
        public var udp: UDPTrackerExchange.Configuration
        /// A UDP tracker that has not answered this many retransmissions is given up for this round when
        /// its tier has another tracker to try; a lone UDP tracker is retried as BEP 15 says, for ever.
        public var udpTimeoutsBeforeFailover: Int
        /// How long `stopped` announces are waited for.
        public var stopTimeout: Interval
        /// For the shuffle of each tier and the transaction ids.
        public var seed: UInt64

        public init(
            infoHash: Bytes20, peerID: Bytes20, port: UInt16, key: UInt32, numWant: Int32 = 50,
            announceToAllTiers: Bool = true, defaultInterval: Interval = .seconds(1800),
            minimumInterval: Interval = .seconds(5), maximumInterval: Interval = .seconds(86_400),
            retryBase: Interval = .seconds(30), retryMax: Interval = .seconds(1800),
            udp: UDPTrackerExchange.Configuration = .init(), udpTimeoutsBeforeFailover: Int = 2,
            stopTimeout: Interval = .seconds(5), seed: UInt64
        ) {
            self.infoHash = infoHash
            self.peerID = peerID
            self.port = port
            self.key = key
            self.numWant = numWant
            self.announceToAllTiers = announceToAllTiers
            self.defaultInterval = defaultInterval
            self.minimumInterval = minimumInterval
            self.maximumInterval = maximumInterval
            self.retryBase = retryBase
            self.retryMax = retryMax
            self.udp = udp
            self.udpTimeoutsBeforeFailover = udpTimeoutsBeforeFailover
            self.stopTimeout = stopTimeout
            self.seed = seed
        }
    }

    /// What the torrent has moved, as announces report it (BEP 3 `uploaded`, `downloaded`, `left`).
    public struct Totals: Hashable, Sendable {
        public var uploaded: Int64
        public var downloaded: Int64
        public var left: Int64

        public init(uploaded: Int64 = 0, downloaded: Int64 = 0, left: Int64) {
            self.uploaded = uploaded
            self.downloaded = downloaded
            self.left = left
        }
    }

    /// Names an HTTP request, so that its answer finds its way back.
    public struct RequestID: Hashable, Sendable, CustomStringConvertible {
        public let value: Int
        public var description: String { "#\(value)" }
    }

    public enum Action: Hashable, Sendable {
        /// GET this URL and hand the body (or the failure) to `httpResponse`/`httpFailed`.
        case sendHTTP(RequestID, tracker: Int, url: String)
        /// Send this datagram to the tracker's host and port (resolving the host), and hand what comes
        /// back from there to `udpReceived(tracker:)`, or a failure to resolve or send to `udpFailed`.
        case sendUDP(tracker: Int, host: String, port: Int, datagram: [UInt8])
        /// Peers a tracker gave.
        case peers([PeerAddress], tracker: Int)
        /// For the user.
        case report(Report)
    }

    public enum Report: Hashable, Sendable {
        /// A tracker answered an announce.
        case announced(TrackerURL, event: AnnounceEvent, peers: Int, seeders: Int64?, leechers: Int64?, interval: Interval)
        /// A tracker answered with a `warning message`.
        case warning(TrackerURL, String)
        /// An announce failed (the tracker refused, could not be reached, or did not answer); the next
        /// attempt is due at `retryAt` (nil when another tracker is tried at once).
        case failed(TrackerURL, reason: String, retryAt: Instant?)
        /// Every `stopped` announce was answered, failed or timed out: the runtime may close.
        case stopped
    }
}
