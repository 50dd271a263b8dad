/// An HTTP announce's parameters as the tracker server reads them (BEP 3; `compact` BEP 23).
public struct HTTPAnnounceQuery: Hashable, Sendable {
    public var infoHash: Bytes20
    public var peerID: Bytes20
    public var port: UInt16
    public var uploaded: Int64
    public var downloaded: Int64
    /// Unknown (not sent) counts as a leecher.
    public var left: Int64
    public var event: AnnounceEvent
    /// nil: not given (or not a number).
    public var numWant: Int?
    /// Compact peers unless the client sent `compact=0`.
    public var compact: Bool
    public var key: [UInt8]?
    public var trackerID: [UInt8]?

    /// Reads the raw query (after `?`). Refuses a missing or malformed `info_hash` or `peer_id` (not 20
    /// bytes once decoded), a missing port or port 0, and counts that are not non-negative integers.
    /// An absurd `numwant` is capped later; a non-numeric one is ignored. Unknown parameters are ignored.
    public init(query: UnsafeRawBufferPointer) throws(TrackerError) {
        var infoHash: Bytes20?
        var peerID: Bytes20?
        var port: Int?
        var uploaded: Int64 = 0
        var downloaded: Int64 = 0
        var left: Int64 = 1
        var event = AnnounceEvent.none
        var numWant: Int?
        var compact = true
        var key: [UInt8]?
        var trackerID: [UInt8]?
        var failure: TrackerError?
        URLQuery.forEachParameter(in: query) { name, value in
            switch Parameter(name) {
            case .infoHash:
                guard value.count == 20 else {
                    failure = TrackerError(.badRequest("info_hash is \(value.count) bytes, not 20"))
                    return false
                }
                infoHash = Bytes20(UnsafeRawBufferPointer(value), at: 0)
            case .peerID:
                guard value.count == 20 else {
                    failure = TrackerError(.badRequest("peer_id is \(value.count) bytes, not 20"))
                    return false
                }
                peerID = Bytes20(UnsafeRawBufferPointer(value), at: 0)
            case .port:
                guard let number = Self.number(value), (1...65535).contains(number) else {
                    failure = TrackerError(.badRequest("invalid port"))
                    return false
                }
                port = Int(number)
            case .uploaded, .downloaded, .left:
                guard let number = Self.number(value) else {
                    failure = TrackerError(.badRequest("\(String(decoding: name, as: UTF8.self)) is not a non-negative integer"))
                    return false
                }
                switch Parameter(name) {
                case .uploaded: uploaded = number
                case .downloaded: downloaded = number
                default: left = number
                }
            case .event:
                event = AnnounceEvent(httpValue: UnsafeRawBufferPointer(value))
            case .numWant:
                numWant = Self.number(value).map { Int(clamping: $0) } ?? (value.first == UInt8(ascii: "-") ? -1 : nil)
            case .compact:
                compact = !URLQuery.bytes(value, equal: "0")
            case .key:
                key = Array(value.prefix(64))
            case .trackerID:
                trackerID = Array(value.prefix(256))
            case .other:
                break
            }
            return true
        }
        if let failure { throw failure }
        guard let infoHash else { throw TrackerError(.badRequest("missing info_hash")) }
        guard let peerID else { throw TrackerError(.badRequest("missing peer_id")) }
        guard let port else { throw TrackerError(.badRequest("missing port")) }
        self.infoHash = infoHash
        self.peerID = peerID
        self.port = UInt16(port)
        self.uploaded = uploaded
        self.downloaded = downloaded
        self.left = left
        self.event = event
        self.numWant = numWant
        self.compact = compact
        self.key = key
        self.trackerID = trackerID
    }

    public init(query: [UInt8]) throws(TrackerError) {
        self = try query.withUnsafeBytes { buffer in Result { () throws(TrackerError) in try Self(query: buffer) } }.get()
    }

    enum Parameter {
        case infoHash, peerID, port, uploaded, downloaded, left, event, numWant, compact, key, trackerID, other

        init(_ name: UnsafeBufferPointer<UInt8>) {
            // Compared as raw buffers: comparing with a String's UTF-8 view was a generic loop per name.
            func matches(_ text: StaticString) -> Bool { URLQuery.bytes(name, equal: text) }
            switch name.count {
            case 9 where matches("info_hash"): self = .infoHash
            case 7 where matches("peer_id"): self = .peerID
            case 4 where matches("port"): self = .port
            case 8 where matches("uploaded"): self = .uploaded
            case 10 where matches("downloaded"): self = .downloaded
            case 4 where matches("left"): self = .left
            case 5 where matches("event"): self = .event
            case 7 where matches("numwant"): self = .numWant
            case 7 where matches("compact"): self = .compact
            case 3 where matches("key"): self = .key
            case 9 where matches("trackerid"): self = .trackerID
            default: self = .other
            }
        }
    }

    /// A non-negative decimal integer of at most 19 digits; larger values saturate at `Int64.max`.
    static func number(_ value: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !value.isEmpty, value.count <= 40 else { return nil }
        var result: Int64 = 0
        for byte in value {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            result = overflow1 || overflow2 ? .max : sum
        }
        return result
    }
}

/// An HTTP scrape's info-hashes (BEP 48: `info_hash` repeated; none asks for every swarm).
public struct HTTPScrapeQuery: Hashable, Sendable {
    public var infoHashes: [Bytes20]

    /// The most info-hashes read from one scrape.
    public static let maxInfoHashes = 100

    public init(query: UnsafeRawBufferPointer) throws(TrackerError) {
        var hashes: [Bytes20] = []
        var failure: TrackerError?
        URLQuery.forEachParameter(in: query) { name, value in
            guard URLQuery.bytes(name, equal: "info_hash") else { return true }
            guard let hash = Bytes20(bytes: value) else {
                failure = TrackerError(.badRequest("info_hash is \(value.count) bytes, not 20"))
                return false
            }
            if hashes.count < Self.maxInfoHashes && !hashes.contains(hash) { hashes.append(hash) }
            return true
        }
        if let failure { throw failure }
        infoHashes = hashes
    }

    public init(query: [UInt8]) throws(TrackerError) {
        self = try query.withUnsafeBytes { buffer in Result { () throws(TrackerError) in try Self(query: buffer) } }.get()
    }
}
