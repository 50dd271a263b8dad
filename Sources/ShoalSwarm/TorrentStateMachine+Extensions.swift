import NIOCore
import ShoalCore
import ShoalWire

/// The torrent's BEP 10 extensions: serving the info dictionary (`ut_metadata`, BEP 9) and peer exchange
/// (`ut_pex`, BEP 11).
extension TorrentStateMachine {
    /// Our extension handshake: `ut_metadata` with `metadata_size` when we can serve the info dictionary
    /// (it was given, and the torrent is not private), `ut_pex` when peer exchange is on, our listen port
    /// and client name when known. A torrent given neither sends the bare handshake it always sent (the
    /// simulator's swarms, whose timing depends on it).
    var ourExtensionHandshake: ExtensionHandshake {
        .shoal(
            metadata: !configuration.isPrivate && configuration.infoBytes != nil,
            metadataSize: configuration.infoBytes?.count, peerExchange: peerExchange.enabled,
            listenPort: configuration.listenPort, client: configuration.clientName)
    }

    /// The port we listen on, once known (the listener may pick one): told to peers connected from now on.
    public mutating func setListenPort(_ port: UInt16) {
        configuration.listenPort = port == 0 ? nil : port
    }

    /// Requests more than this many times the metadata's piece count (plus a few) are rejected: BEP 9
    /// allows flood protection, and a peer that fetches the metadata twice over is still served.
    static let metadataRequestFactor = 4

    /// An extension message, under the id *we* gave it in our handshake.
    mutating func receivedExtensionMessage(
        id: UInt8, payload: ByteBuffer, from key: PeerKey, now: Instant, into sink: inout ActionSink
    ) {
        do throws(WireError) {
            switch id {
            case ExtensionHandshake.metadataMessageID:
                guard let message = try MetadataMessage.decode(payload) else { return }
                serveMetadata(message, to: key, now: now, into: &sink)
            case ExtensionHandshake.peerExchangeMessageID:
                guard peerExchange.enabled else { return }
                let message = try PeerExchangeMessage(decoding: payload)
                let learned = peerExchange.received(
                    message, from: key, now: now, weAreSeed: isComplete, random: &random)
                guard !learned.isEmpty else { return }
                planner.add(learned, source: .pex, now: now)
                dial(now: now, into: &sink)
            default:
                return
            }
        } catch {
            drop(key, misbehaved: true, ban: error.disposition == .ban, now: now, into: &sink)
        }
    }

    /// Answers a `ut_metadata` request: the piece when we have the info dictionary (and the torrent is
    /// not private, and the peer has not asked too often), a reject otherwise (BEP 9). Data and rejects
    /// are ignored: we ask for nothing here.
    private mutating func serveMetadata(
        _ message: MetadataMessage, to key: PeerKey, now: Instant, into sink: inout ActionSink
    ) {
        guard case .request(let piece) = message,
            let id = withPeer(key, { $0.machine.peerExtensions?.id(for: MetadataMessage.extensionName) }) ?? nil
        else { return }
        let asked = metadataRequests[key, default: 0] + 1
        metadataRequests[key] = asked
        var reply = MetadataMessage.reject(piece: piece)
        if !configuration.isPrivate, let info = configuration.infoBytes,
            let length = MetadataMessage.length(ofPiece: piece, totalSize: info.count),
            asked <= Self.metadataRequestFactor * MetadataMessage.pieceCount(totalSize: info.count) + 8
        {
            let start = piece * MetadataMessage.pieceLength
            reply = .data(piece: piece, totalSize: info.count, block: ByteBuffer(bytes: info[start..<(start + length)]))
            metadataPiecesServed += 1
        }
        guard let wire = withPeer(key, { $0.machine.sendExtended(id: id, payload: reply.payload, now: now) }) else {
            return
        }
        perform(wire, for: key, now: now, into: &sink)
    }

    /// Sends the PEX messages that are due (at most one a minute to each peer).
    mutating func sendPeerExchange(now: Instant, into sink: inout ActionSink) {
        guard let deadline = peerExchange.nextDeadline, now >= deadline else { return }
        var seeds = Set<PeerKey>()
        for index in peers.indices where peers.values[index].pieces.isComplete { seeds.insert(peers.keys[index]) }
        for (key, message) in peerExchange.messagesDue(now: now, isSeed: { seeds.contains($0) }) {
            let wire = withPeer(key) { peer -> [PeerAction] in
                guard let id = peer.machine.peerExtensions?.id(for: PeerExchangeMessage.extensionName) else { return [] }
                return peer.machine.sendExtended(id: id, payload: ByteBuffer(bytes: message.encoded), now: now)
            }
            if let wire { perform(wire, for: key, now: now, into: &sink) }
        }
    }
}
