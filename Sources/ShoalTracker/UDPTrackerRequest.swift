/// A packet a client sends to a UDP tracker (BEP 15): connect, announce or scrape. All fields are
/// big-endian. Decoding (the server's side) accepts packets longer than their kind (BEP 15: "do not
/// expect packets to be exactly of a certain size"; BEP 41 options may follow an announce) and ignores
/// what follows.
public enum UDPTrackerRequest: Hashable, Sendable {
    case connect(transactionID: UInt32)
    case announce(connectionID: UInt64, transactionID: UInt32, UDPAnnounce)
    case scrape(connectionID: UInt64, transactionID: UInt32, infoHashes: [Bytes20])

    /// BEP 15's magic constant, the first eight bytes of a connect request.
    public static let protocolID: UInt64 = 0x417_2710_1980
    /// A connect request's size; also the least any request has.
    public static let connectSize = 16
    /// An announce request's size (IPv4 and IPv6 alike).
    public static let announceSize = 98
    /// BEP 15: "up to about 74 torrents can be scraped at once"; more are ignored.
    public static let maxScrapeHashes = 74

    public enum Action: UInt32, Sendable {
        case connect = 0, announce = 1, scrape = 2, error = 3
    }

    public var transactionID: UInt32 {
        switch self {
        case .connect(let id), .announce(_, let id, _), .scrape(_, let id, _): id
        }
    }

    /// Appends the packet's bytes to `output`.
    public func encode(into output: inout [UInt8]) {
        switch self {
        case .connect(let transactionID):
            output.appendBigEndian(Self.protocolID)
            output.appendBigEndian(Action.connect.rawValue)
            output.appendBigEndian(transactionID)
        case .announce(let connectionID, let transactionID, let announce):
            output.appendBigEndian(connectionID)
            output.appendBigEndian(Action.announce.rawValue)
            output.appendBigEndian(transactionID)
            announce.infoHash.append(to: &output)
            announce.peerID.append(to: &output)
            output.appendBigEndian(UInt64(bitPattern: announce.downloaded))
            output.appendBigEndian(UInt64(bitPattern: announce.left))
            output.appendBigEndian(UInt64(bitPattern: announce.uploaded))
            output.appendBigEndian(announce.event.rawValue)
            output.appendBigEndian(announce.ipv4)
            output.appendBigEndian(announce.key)
            output.appendBigEndian(UInt32(bitPattern: announce.numWant))
            output.appendBigEndian(announce.port)
        case .scrape(let connectionID, let transactionID, let infoHashes):
            output.appendBigEndian(connectionID)
            output.appendBigEndian(Action.scrape.rawValue)
            output.appendBigEndian(transactionID)
            for hash in infoHashes { hash.append(to: &output) }
        }
    }

    public var encoded: [UInt8] {
        var output: [UInt8] = []
        encode(into: &output)
        return output
    }

    public init(decoding bytes: [UInt8]) throws(TrackerError) {
        self = try bytes.withUnsafeBytes { buffer in Result { () throws(TrackerError) in try Self(decoding: buffer) } }.get()
    }

    /// Reads a request. A connect must carry the protocol id; an announce must have its 98 bytes; a
    /// scrape's info-hashes are whole 20-byte runs after the header (a partial one is ignored), at most
    /// ``maxScrapeHashes``.
    public init(decoding packet: UnsafeRawBufferPointer) throws(TrackerError) {
        guard packet.count >= Self.connectSize else { throw TrackerError(.tooShort(needed: Self.connectSize, got: packet.count)) }
        let first = packet.loadBigEndian(UInt64.self, at: 0)
        let action = packet.loadBigEndian(UInt32.self, at: 8)
        let transactionID = packet.loadBigEndian(UInt32.self, at: 12)
        switch Action(rawValue: action) {
        case .connect:
            guard first == Self.protocolID else { throw TrackerError(.badProtocolID, at: 0) }
            self = .connect(transactionID: transactionID)
        case .announce:
            guard packet.count >= Self.announceSize else {
                throw TrackerError(.tooShort(needed: Self.announceSize, got: packet.count))
            }
            self = .announce(connectionID: first, transactionID: transactionID, UDPAnnounce(packet))
        case .scrape:
            let count = min((packet.count - 16) / 20, Self.maxScrapeHashes)
            var hashes: [Bytes20] = []
            hashes.reserveCapacity(count)
            for index in 0..<count { hashes.append(Bytes20(packet, at: 16 + 20 * index)) }
            self = .scrape(connectionID: first, transactionID: transactionID, infoHashes: hashes)
        case .error, nil:
            throw TrackerError(.unexpectedAction(action), at: 8)
        }
    }
}

/// The fields of a BEP 15 announce after its header.
public struct UDPAnnounce: Hashable, Sendable {
    public var infoHash: Bytes20
    public var peerID: Bytes20
    public var downloaded: Int64
    public var left: Int64
    public var uploaded: Int64
    public var event: AnnounceEvent
    /// The `IP address` field: 0 asks the tracker to use the packet's source (trackers honour little else).
    public var ipv4: UInt32
    public var key: UInt32
    /// -1: the tracker's default.
    public var numWant: Int32
    public var port: UInt16

    public init(
        infoHash: Bytes20, peerID: Bytes20, downloaded: Int64, left: Int64, uploaded: Int64, event: AnnounceEvent,
        ipv4: UInt32 = 0, key: UInt32, numWant: Int32, port: UInt16
    ) {
        self.infoHash = infoHash
        self.peerID = peerID
        self.downloaded = downloaded
        self.left = left
        self.uploaded = uploaded
        self.event = event
        self.ipv4 = ipv4
        self.key = key
        self.numWant = numWant
        self.port = port
    }

    /// The announce fields of `request`, for UDP.
    public init(_ request: AnnounceRequest) {
        self.init(
            infoHash: request.infoHash, peerID: request.peerID, downloaded: max(request.downloaded, 0),
            left: max(request.left, 0), uploaded: max(request.uploaded, 0), event: request.event, key: request.key,
            numWant: request.numWant ?? -1, port: request.port)
    }

    /// From a packet of at least 98 bytes. An unknown event number reads as `none`.
    @inline(__always)
    init(_ packet: UnsafeRawBufferPointer) {
        infoHash = Bytes20(packet, at: 16)
        peerID = Bytes20(packet, at: 36)
        downloaded = Int64(bitPattern: packet.loadBigEndian(UInt64.self, at: 56))
        left = Int64(bitPattern: packet.loadBigEndian(UInt64.self, at: 64))
        uploaded = Int64(bitPattern: packet.loadBigEndian(UInt64.self, at: 72))
        event = AnnounceEvent(rawValue: packet.loadBigEndian(UInt32.self, at: 80)) ?? .none
        ipv4 = packet.loadBigEndian(UInt32.self, at: 84)
        key = packet.loadBigEndian(UInt32.self, at: 88)
        numWant = Int32(bitPattern: packet.loadBigEndian(UInt32.self, at: 92))
        port = packet.loadBigEndian(UInt16.self, at: 96)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func loadBigEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
