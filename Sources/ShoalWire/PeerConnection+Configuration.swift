import NIOCore
import ShoalCore

extension PeerConnection {
    /// What a connection needs to know about us and its torrent, and its timers and bounds.
    public struct Configuration: Hashable, Sendable {
        /// The torrent's v1 info-hash (or a v2 hash truncated to 20 bytes, BEP 52).
        public var infoHash: Digest20
        /// Our peer id.
        public var peerID: PeerID
        /// The reserved bits we send: by default the extension protocol and the fast extension.
        public var reserved: ReservedBits
        /// Our BEP 10 handshake, sent right after our bitfield when both sides set the extension
        /// bit. Its `reqq` is filled from ``maxPeerRequests`` when unset.
        public var extensionHandshake: ExtensionHandshake?
        /// Our DHT port, sent in a BEP 5 `port` message to peers that set the DHT bit.
        public var dhtPort: UInt16?
        /// How many of the peer's requests we queue (our `reqq`, libtorrent's default: 250).
        /// Beyond it requests are rejected (fast extension) or dropped.
        public var maxPeerRequests: Int
        /// How many of our requests may be outstanding at once (DESIGN: a queue follows the rate,
        /// within 2...500 blocks); beyond it ``StateMachine/request(_:now:)`` returns the block.
        public var maxOutstandingRequests: Int
        /// How many `allowed fast` pieces we keep from the peer (BEP 6 suggests k = 10).
        public var maxAllowedFast: Int
        /// Send a keep-alive after this long without sending anything (libtorrent: 90 s; BEP 3:
        /// "generally sent once every two minutes").
        public var keepAliveInterval: Interval
        /// Close after this long without receiving anything. Three minutes: a peer that sends its
        /// keep-alives every two minutes (BEP 3) still fits, with a minute to spare for latency.
        public var inactivityTimeout: Interval
        /// Close when the peer's handshake has not arrived this long after the machine was made
        /// (libtorrent's `handshake_timeout`: 10 s).
        public var handshakeTimeout: Interval
        /// A peer that sends no block for this long while we have requests outstanding is
        /// snubbed (libtorrent: 60 s). Cancelled requests the peer never answers are forgotten
        /// after this long too.
        public var snubTimeout: Interval
        /// The decoder's limits; the state machine applies the block length limit to messages
        /// it is given, too.
        public var limits: WireLimits
        /// Send `have` also to a peer that has the piece already. Off by default (libtorrent's
        /// `send_redundant_have` off): such a `have` tells the peer nothing it can use, and in a large
        /// swarm haves are most of the messages.
        public var sendsRedundantHaves: Bool

        public init(
            infoHash: Digest20,
            peerID: PeerID,
            reserved: ReservedBits = [.extensionProtocol, .fastExtension],
            extensionHandshake: ExtensionHandshake? = ExtensionHandshake(),
            dhtPort: UInt16? = nil,
            maxPeerRequests: Int = 250,
            maxOutstandingRequests: Int = 500,
            maxAllowedFast: Int = 64,
            keepAliveInterval: Interval = .seconds(90),
            inactivityTimeout: Interval = .seconds(180),
            handshakeTimeout: Interval = .seconds(10),
            snubTimeout: Interval = .seconds(60),
            limits: WireLimits = WireLimits(),
            sendsRedundantHaves: Bool = false
        ) {
            self.infoHash = infoHash
            self.peerID = peerID
            self.reserved = reserved
            self.extensionHandshake = extensionHandshake
            self.dhtPort = dhtPort
            self.maxPeerRequests = maxPeerRequests
            self.maxOutstandingRequests = maxOutstandingRequests
            self.maxAllowedFast = maxAllowedFast
            self.keepAliveInterval = keepAliveInterval
            self.inactivityTimeout = inactivityTimeout
            self.handshakeTimeout = handshakeTimeout
            self.snubTimeout = snubTimeout
            self.limits = limits
            self.sendsRedundantHaves = sendsRedundantHaves
        }
    }
}
