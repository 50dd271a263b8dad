import ShoalCore
import ShoalWire

/// What a torrent has moved and with whom: for progress lines, the end-of-run report and the lab.
public struct TorrentStatistics: Sendable {
    /// Bytes moved with one peer.
    public struct Transfer: Hashable, Sendable {
        /// Block payload received from the peer (duplicates from endgame included).
        public var downloaded: Int64 = 0
        /// Block payload sent to the peer.
        public var uploaded: Int64 = 0

        public init(downloaded: Int64 = 0, uploaded: Int64 = 0) {
            self.downloaded = downloaded
            self.uploaded = uploaded
        }

        /// Adds another count to this one.
        public mutating func add(_ other: Transfer) {
            downloaded += other.downloaded
            uploaded += other.uploaded
        }
    }

    /// A connected peer.
    public struct Peer: Sendable {
        public var key: PeerKey
        public var address: PeerAddress
        /// Its id from the handshake; nil until the handshake arrived.
        public var peerID: PeerID?
        public var transfer: Transfer
        public var downloadRate: Double
        public var uploadRate: Double
        /// Pieces it has, as far as it told us (peers do not announce pieces we have, see
        /// `PeerConnection.Configuration.sendsRedundantHaves`).
        public var pieces: Int
        public var amChoking: Bool
        public var peerChoking: Bool
    }

    /// Block payload received from every peer (what failed its hash check included).
    public var downloaded: Int64 = 0
    /// Block payload sent to every peer.
    public var uploaded: Int64 = 0
    /// Bytes of pieces that failed their hash check and were thrown away.
    public var wasted: Int64 = 0
    /// Bytes per second over the last seconds, all peers together.
    public var downloadRate: Double = 0
    public var uploadRate: Double = 0
    /// Pieces verified and pieces in the torrent.
    public var piecesVerified = 0
    public var pieceCount = 0
    /// Wanted pieces (priority above skip) not verified yet.
    public var piecesRemaining = 0
    /// The peers connected now, by key.
    public var peers: [Peer] = []
    /// Everything moved with each peer id since the start, including peers that have gone.
    public var byPeerID: [PeerID: Transfer] = [:]
}
