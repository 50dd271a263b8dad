import ShoalCore

/// A packet a UDP tracker sends back (BEP 15): the connection id, an announce's interval, counts and
/// peers (6 bytes each over IPv4, 18 over IPv6: the family of the packet decides), a scrape's counts,
/// or an error message.
public enum UDPTrackerResponse: Hashable, Sendable {
    case connect(transactionID: UInt32, connectionID: UInt64)
    case announce(transactionID: UInt32, interval: Int32, leechers: Int32, seeders: Int32, peers: [PeerAddress])
    case scrape(transactionID: UInt32, counts: [ScrapeCounts])
    case error(transactionID: UInt32, message: String)

    /// The longest error message kept (the rest of the packet is ignored).
    public static let maxMessage = 1024

    public var transactionID: UInt32 {
        switch self {
        case .connect(let id, _), .announce(let id, _, _, _, _), .scrape(let id, _), .error(let id, _): id
        }
    }

    /// Appends the packet's bytes. Announce peers must all be of one family.
    public func encode(into output: inout [UInt8]) {
        switch self {
        case .connect(let transactionID, let connectionID):
            Self.writeConnect(transactionID: transactionID, connectionID: connectionID, into: &output)
        case .announce(let transactionID, let interval, let leechers, let seeders, let peers):
            Self.writeAnnounceHeader(
                transactionID: transactionID, interval: interval, leechers: leechers, seeders: seeders, into: &output)
            for peer in peers { output += peer.compact }
        case .scrape(let transactionID, let counts):
            output.appendBigEndian(UDPTrackerRequest.Action.scrape.rawValue)
            output.appendBigEndian(transactionID)
            for count in counts {
                output.appendBigEndian(UInt32(clamping: count.seeders))
                output.appendBigEndian(UInt32(clamping: count.completed))
                output.appendBigEndian(UInt32(clamping: count.leechers))
            }
        case .error(let transactionID, let message):
            Self.writeError(transactionID: transactionID, message: message, into: &output)
        }
    }

    public var encoded: [UInt8] {
        var output: [UInt8] = []
        encode(into: &output)
        return output
    }

    @inline(__always)
    public static func writeConnect(transactionID: UInt32, connectionID: UInt64, into output: inout [UInt8]) {
        output.appendBigEndian(UDPTrackerRequest.Action.connect.rawValue)
        output.appendBigEndian(transactionID)
        output.appendBigEndian(connectionID)
    }

    /// The 20 bytes before an announce answer's peers.
    @inline(__always)
    public static func writeAnnounceHeader(
        transactionID: UInt32, interval: Int32, leechers: Int32, seeders: Int32, into output: inout [UInt8]
    ) {
        output.appendBigEndian(UDPTrackerRequest.Action.announce.rawValue)
        output.appendBigEndian(transactionID)
        output.appendBigEndian(UInt32(bitPattern: interval))
        output.appendBigEndian(UInt32(bitPattern: leechers))
        output.appendBigEndian(UInt32(bitPattern: seeders))
    }

    public static func writeError(transactionID: UInt32, message: String, into output: inout [UInt8]) {
        output.appendBigEndian(UDPTrackerRequest.Action.error.rawValue)
        output.appendBigEndian(transactionID)
        output.append(contentsOf: message.utf8.prefix(maxMessage))
    }

    /// Reads an answer that arrived over IPv6 (`ipv6`: 18-byte peers) or IPv4 (6-byte peers). A partial
    /// peer or scrape entry at the end is ignored, as are peers with port 0.
    public init(decoding bytes: [UInt8], ipv6: Bool) throws(TrackerError) {
        guard bytes.count >= 8 else { throw TrackerError(.tooShort(needed: 8, got: bytes.count)) }
        let (action, transactionID) = bytes.withUnsafeBytes {
            ($0.loadBigEndian(UInt32.self, at: 0), $0.loadBigEndian(UInt32.self, at: 4))
        }
        switch UDPTrackerRequest.Action(rawValue: action) {
        case .connect:
            guard bytes.count >= 16 else { throw TrackerError(.tooShort(needed: 16, got: bytes.count)) }
            self = .connect(transactionID: transactionID, connectionID: bytes.withUnsafeBytes { $0.loadBigEndian(UInt64.self, at: 8) })
        case .announce:
            guard bytes.count >= 20 else { throw TrackerError(.tooShort(needed: 20, got: bytes.count)) }
            let (interval, leechers, seeders) = bytes.withUnsafeBytes {
                (Int32(bitPattern: $0.loadBigEndian(UInt32.self, at: 8)), Int32(bitPattern: $0.loadBigEndian(UInt32.self, at: 12)),
                 Int32(bitPattern: $0.loadBigEndian(UInt32.self, at: 16)))
            }
            let stride = ipv6 ? 18 : 6
            var peers: [PeerAddress] = []
            peers.reserveCapacity((bytes.count - 20) / stride)
            var start = 20
            while start + stride <= bytes.count {
                if let peer = PeerAddress(compact: bytes[start..<(start + stride)]), peer.port != 0 { peers.append(peer) }
                start += stride
            }
            self = .announce(transactionID: transactionID, interval: interval, leechers: leechers, seeders: seeders, peers: peers)
        case .scrape:
            var counts: [ScrapeCounts] = []
            var start = 8
            bytes.withUnsafeBytes { buffer in
                while start + 12 <= buffer.count {
                    counts.append(
                        ScrapeCounts(
                            seeders: Int64(buffer.loadBigEndian(UInt32.self, at: start)),
                            completed: Int64(buffer.loadBigEndian(UInt32.self, at: start + 4)),
                            leechers: Int64(buffer.loadBigEndian(UInt32.self, at: start + 8))))
                    start += 12
                }
            }
            self = .scrape(transactionID: transactionID, counts: counts)
        case .error:
            let text = String(decoding: bytes[8...].prefix(Self.maxMessage), as: UTF8.self)
            self = .error(transactionID: transactionID, message: PrintableText.escaped(text))
        case nil:
            throw TrackerError(.unexpectedAction(action), at: 0)
        }
    }
}
