import ShoalBencode
import ShoalCore

/// A tracker's answer to an announce (BEP 3), from HTTP (bencoded) or UDP (BEP 15, which carries
/// only the interval, the counts and the peers).
public struct AnnounceResponse: Hashable, Sendable {
    /// Seconds to wait before the next regular announce.
    public var interval: Int64?
    /// Seconds under which the tracker does not want to hear from us again, even when we ask for peers.
    public var minInterval: Int64?
    /// To send back in later announces (BEP 3 `tracker id`).
    public var trackerID: [UInt8]?
    /// Seeders (`complete`), leechers (`incomplete`), and completed downloads (`downloaded`, as trackers
    /// give it in announces and BEP 48 scrapes).
    public var seeders: Int64?
    public var leechers: Int64?
    public var downloaded: Int64?
    /// The peers, IPv4 (`peers`, BEP 23 compact or BEP 3 dictionaries) and IPv6 (`peers6`, BEP 7).
    public var peers: [PeerAddress]
    /// The tracker's `warning message`: the announce worked, but the user should hear this.
    public var warning: String?

    public init(
        interval: Int64? = nil, minInterval: Int64? = nil, trackerID: [UInt8]? = nil, seeders: Int64? = nil,
        leechers: Int64? = nil, downloaded: Int64? = nil, peers: [PeerAddress] = [], warning: String? = nil
    ) {
        self.interval = interval
        self.minInterval = minInterval
        self.trackerID = trackerID
        self.seeders = seeders
        self.leechers = leechers
        self.downloaded = downloaded
        self.peers = peers
        self.warning = warning
    }

    /// Bounds on what an HTTP answer may hold.
    public struct Limits: Hashable, Sendable {
        /// The largest answer read (the HTTP client stops reading past it).
        public var maxBytes: Int
        /// Peers kept from one answer; the rest are ignored.
        public var maxPeers: Int
        /// Longest text kept from `failure reason` and `warning message`.
        public var maxText: Int

        public init(maxBytes: Int = 1 << 20, maxPeers: Int = 5000, maxText: Int = 1024) {
            self.maxBytes = maxBytes
            self.maxPeers = maxPeers
            self.maxText = maxText
        }
    }

    /// Reads a bencoded HTTP announce answer. A `failure reason` throws ``TrackerError/Code/refused(_:retryIn:)``.
    /// Peers that cannot be dialled (port 0, a host name instead of an address) are skipped; a compact
    /// string whose length is not a multiple of its entry size is refused.
    public init(http bytes: [UInt8], limits: Limits = Limits()) throws(TrackerError) {
        let root = try Self.dictionary(bytes, limits: limits)
        self.init()
        interval = try Self.integer(root, "interval", minimum: 0)
        minInterval = try Self.integer(root, "min interval", minimum: 0)
        seeders = try Self.integer(root, "complete", minimum: 0)
        leechers = try Self.integer(root, "incomplete", minimum: 0)
        downloaded = try Self.integer(root, "downloaded", minimum: 0)
        if let node = root["tracker id"] {
            guard let id = node.bytes else { throw TrackerError(.invalidField("tracker id", reason: "is not a string"), at: node.span.lowerBound) }
            guard id.count <= 256 else { throw TrackerError(.invalidField("tracker id", reason: "is longer than 256 bytes"), at: node.span.lowerBound) }
            trackerID = Array(id)
        }
        warning = try Self.text(root, "warning message", limit: limits.maxText)
        if let node = root["peers"] {
            if let compact = node.bytes {
                try Self.appendCompact(compact, stride: 6, field: "peers", at: node.contentOffset, to: &peers, limit: limits.maxPeers)
            } else if let list = node.list {
                for entry in list where peers.count < limits.maxPeers {
                    guard let ip = entry["ip"]?.string, let port = entry["port"]?.integer, (1...65535).contains(port) else { continue }
                    let text = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
                    if let address = PeerAddress(text) { peers.append(address) }
                }
            } else {
                throw TrackerError(.invalidField("peers", reason: "is neither a string nor a list"), at: node.span.lowerBound)
            }
        }
        if let node = root["peers6"] {
            guard let compact = node.bytes else {
                throw TrackerError(.invalidField("peers6", reason: "is not a string"), at: node.span.lowerBound)
            }
            try Self.appendCompact(compact, stride: 18, field: "peers6", at: node.contentOffset, to: &peers, limit: limits.maxPeers)
        }
    }

    /// The canonical bencoding of this answer, with compact `peers` and `peers6` (what Shoal's tracker
    /// sends).
    public var http: [UInt8] {
        var peers4: [UInt8] = []
        var peers6: [UInt8] = []
        for peer in peers {
            if peer.isIPv6 { peers6 += peer.compact } else { peers4 += peer.compact }
        }
        var output: [UInt8] = []
        TrackerBencode.writeAnnounce(
            seeders: seeders, downloaded: downloaded, leechers: leechers, interval: interval, minInterval: minInterval,
            peers: peers4[...], peers6: peers6.isEmpty ? nil : peers6[...], trackerID: trackerID,
            warning: warning.map { Array($0.utf8) }, into: &output)
        return output
    }

    // MARK: - Reading fields

    /// The top-level dictionary of an answer, after throwing its `failure reason` if it has one.
    static func dictionary(_ bytes: [UInt8], limits: Limits) throws(TrackerError) -> BencodeNode {
        guard bytes.count <= limits.maxBytes else {
            throw TrackerError(.invalidField("answer", reason: "is over \(limits.maxBytes) bytes"))
        }
        let document: BencodeDocument
        do { document = try BencodeDocument(decoding: bytes, limits: .message) } catch {
            throw TrackerError(.bencode(error), at: error.offset)
        }
        let root = document.root
        guard root.kind == .dictionary else { throw TrackerError(.notADictionary, at: 0) }
        if let node = root["failure reason"] {
            let reason = node.bytes.map { PrintableText.escaped(String(decoding: $0, as: UTF8.self), limit: limits.maxText) }
            var retryIn: Int64?
            if let retry = root["retry in"] {
                if let minutes = retry.integer, minutes >= 0 {
                    retryIn = minutes
                } else if retry.bytes?.elementsEqual("never".utf8) == true {
                    retryIn = .max
                }
            }
            throw TrackerError(.refused(reason ?? "(no reason given)", retryIn: retryIn), at: node.span.lowerBound)
        }
        return root
    }

    static func integer(_ root: BencodeNode, _ key: String, minimum: Int64) throws(TrackerError) -> Int64? {
        guard let node = root[key] else { return nil }
        guard let value = node.integer else {
            throw TrackerError(.invalidField(key, reason: "is not an integer"), at: node.span.lowerBound)
        }
        guard value >= minimum else {
            throw TrackerError(.invalidField(key, reason: "is \(value), under \(minimum)"), at: node.span.lowerBound)
        }
        return value
    }

    static func text(_ root: BencodeNode, _ key: String, limit: Int) throws(TrackerError) -> String? {
        guard let node = root[key] else { return nil }
        guard let bytes = node.bytes else {
            throw TrackerError(.invalidField(key, reason: "is not a string"), at: node.span.lowerBound)
        }
        return PrintableText.escaped(String(decoding: bytes, as: UTF8.self), limit: limit)
    }

    /// Appends BEP 23 / BEP 7 compact entries, skipping port 0, up to `limit` peers in all.
    static func appendCompact(
        _ bytes: ArraySlice<UInt8>, stride: Int, field: String, at offset: Int, to peers: inout [PeerAddress], limit: Int
    ) throws(TrackerError) {
        guard bytes.count % stride == 0 else {
            throw TrackerError(
                .invalidField(field, reason: "has \(bytes.count) bytes, not a multiple of \(stride)"), at: offset)
        }
        var start = bytes.startIndex
        while start < bytes.endIndex, peers.count < limit {
            if let peer = PeerAddress(compact: bytes[start..<(start + stride)]), peer.port != 0 { peers.append(peer) }
            start += stride
        }
    }
}
