import ShoalCore

/// What a client tells a tracker when it announces (BEP 3; the same fields travel in BEP 15's packet).
public struct AnnounceRequest: Hashable, Sendable {
    public var infoHash: Bytes20
    public var peerID: Bytes20
    /// The TCP port peers reach us on.
    public var port: UInt16
    public var uploaded: Int64
    public var downloaded: Int64
    /// Bytes still to download (0 for a seed).
    public var left: Int64
    public var event: AnnounceEvent
    /// BEP 7 asks for a key with 32 bits of entropy, the same for the whole session, so that the tracker
    /// can tell our announces apart from another client's behind the same address.
    public var key: UInt32
    /// How many peers we want; nil lets the tracker choose.
    public var numWant: Int32?
    /// The `tracker id` a tracker gave us in an earlier answer, sent back (BEP 3).
    public var trackerID: [UInt8]?

    public init(
        infoHash: Bytes20, peerID: Bytes20, port: UInt16, uploaded: Int64 = 0, downloaded: Int64 = 0, left: Int64,
        event: AnnounceEvent = .none, key: UInt32 = 0, numWant: Int32? = nil, trackerID: [UInt8]? = nil
    ) {
        self.infoHash = infoHash
        self.peerID = peerID
        self.port = port
        self.uploaded = uploaded
        self.downloaded = downloaded
        self.left = left
        self.event = event
        self.key = key
        self.numWant = numWant
        self.trackerID = trackerID
    }

    /// The query of an HTTP announce (BEP 3, compact peers of BEP 23): binary values percent-encoded byte
    /// by byte, `key` as eight hexadecimal digits.
    public var httpQuery: String {
        var query = "info_hash=" + URLQuery.percentEncode(infoHash.bytes)
        query += "&peer_id=" + URLQuery.percentEncode(peerID.bytes)
        query += "&port=\(port)&uploaded=\(max(uploaded, 0))&downloaded=\(max(downloaded, 0))&left=\(max(left, 0))"
        query += "&corrupt=0&key=" + Hex.encode(withUnsafeBytes(of: key.bigEndian) { Array($0) })
        if let name = event.httpName { query += "&event=" + name }
        if let numWant { query += "&numwant=\(max(numWant, 0))" }
        query += "&compact=1&no_peer_id=1&supportcrypto=1"
        if let trackerID { query += "&trackerid=" + URLQuery.percentEncode(trackerID) }
        return query
    }

    /// The full URL of this announce to `tracker`.
    public func httpURL(_ tracker: TrackerURL) -> String {
        tracker.appendingQuery(httpQuery)
    }
}
