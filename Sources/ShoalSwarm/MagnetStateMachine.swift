import NIOCore
import ShoalCore
import ShoalWire

/// A torrent started from a magnet link, until it has its info dictionary (BEP 9), as a pure state
/// machine: it connects to the peers it learns (the link's `x.pe`, the command line, later trackers and
/// the DHT, and peer exchange), asks those that advertise `ut_metadata` for the metadata through a
/// ``MetadataExchange``, and ends with the checked info dictionary and the peers worth dialling again.
///
/// Events and actions mirror ``TorrentStateMachine`` (a runtime drives both the same way). Each peer has
/// a wire ``PeerConnection/StateMachine`` that does not know the piece count: what the peer has is kept
/// by the wire machine and not needed here. Requests for our pieces are refused (we have none), requests
/// for metadata are rejected (BEP 9: a peer without the whole metadata MUST reject). Peer exchange
/// (BEP 11) runs here too, unless turned off: a peer that knows the swarm tells us of more peers.
///
/// On success it closes every connection and emits ``Action/metadata(_:peers:)`` once; the runtime then
/// starts the ``TorrentStateMachine`` (see docs/ARCHITECTURE.md for why connections are not handed over).
public struct MagnetStateMachine: Sendable {
    public struct Configuration: Sendable {
        /// The magnet link's info-hashes (v1 and/or v2); the metadata must match all of them.
        public var infoHashes: [InfoHash]
        public var peerID: PeerID
        public var connections: ConnectionPlanner.Limits
        public var exchange: MetadataExchange.Configuration
        /// Peer exchange (BEP 11) while fetching the metadata.
        public var peerExchange: Bool
        /// The port we listen on (BEP 10 `p`).
        public var listenPort: UInt16?
        public var seed: UInt64

        public init(
            infoHashes: [InfoHash], peerID: PeerID, connections: ConnectionPlanner.Limits = .init(),
            peerExchange: Bool = true, listenPort: UInt16? = nil, seed: UInt64 = 0
        ) {
            self.infoHashes = infoHashes
            self.peerID = peerID
            self.connections = connections
            self.exchange = MetadataExchange.Configuration(infoHashes: infoHashes)
            self.peerExchange = peerExchange
            self.listenPort = listenPort
            self.seed = seed
        }

        /// The 20 bytes of the handshake: the v1 info-hash, else the v2 one truncated (BEP 52).
        public var wireInfoHash: Digest20 {
            for hash in infoHashes { if case .v1(let digest) = hash { return digest } }
            return infoHashes.first?.truncated ?? Digest20(bytes: [UInt8](repeating: 0, count: 20))!
        }
    }

    /// What a runtime must do.
    public enum Action: Hashable, Sendable {
        /// Open a TCP connection; answer with `connectionEstablished` or `connectionFailed`.
        case connect(PeerKey, PeerAddress)
        /// Write these bytes to the peer's connection.
        case send(PeerKey, ByteBuffer)
        /// Close the peer's connection (already forgotten here).
        case close(PeerKey)
        /// Never accept this address again.
        case ban(PeerAddress)
        /// The info dictionary's bytes, checked against the info-hashes, and the peers to dial for the
        /// download: those we were connected to (where they can be reached) first, then the others we
        /// know. Comes once, after every connection's `close`.
        case metadata([UInt8], peers: [PeerAddress])
    }

    struct Peer: Sendable {
        var address: PeerAddress
        var machine: PeerConnection.StateMachine
        var decoder = PeerMessageDecoder(pieceCount: nil)
        var inbound = ByteBuffer()
        var handshaken = false
    }

    public let configuration: Configuration
    private var planner: ConnectionPlanner
    private var peers: [PeerKey: Peer] = [:]
    private var dialling: [PeerKey: PeerAddress] = [:]
    private var nextKey = 0
    private var random: SplitMix64
    private var exchange: MetadataExchange
    private var peerExchange: PeerExchange
    private var listenPort: UInt16?
    /// Set once the metadata is in: every event is then ignored.
    public private(set) var isFinished = false

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.planner = ConnectionPlanner(limits: configuration.connections)
        self.random = SplitMix64(seed: configuration.seed)
        self.exchange = MetadataExchange(configuration: configuration.exchange)
        self.peerExchange = PeerExchange(enabled: configuration.peerExchange)
        self.listenPort = configuration.listenPort
    }

    /// Connections open now.
    public var connectedPeers: Int { peers.count }
    /// Connected peers that advertise `ut_metadata`.
    public var metadataPeers: Int { exchange.peerCount }
    /// Metadata pieces received of how many (nil before a peer advertised a size).
    public var progress: (received: Int, total: Int)? { exchange.progress }
    /// Addresses known (connected or not).
    public var knownPeers: Int { planner.knownPeers }

    /// The port we listen on, once known: told to peers connected from now on.
    public mutating func setListenPort(_ port: UInt16) {
        listenPort = port == 0 ? nil : port
    }

    /// When ``tick(now:)`` next has something to do.
    public func nextTickDeadline(now: Instant) -> Instant? {
        guard !isFinished else { return nil }
        let deadlines = [planner.nextDialTime, exchange.nextDeadline(now: now), peerExchange.nextDeadline]
            + peers.values.map(\.machine.nextDeadline)
        return deadlines.compactMap { $0 }.min()
    }

    // MARK: - Connections

    /// Learns peer addresses and dials what the limits allow.
    public mutating func addPeers(_ addresses: [PeerAddress], source: ConnectionPlanner.Source, now: Instant) -> [Action] {
        guard !isFinished else { return [] }
        planner.add(addresses, source: source, now: now)
        var output = Output()
        dial(now: now, into: &output)
        return output.actions
    }

    /// A dial completed: send our handshake.
    public mutating func connectionEstablished(_ key: PeerKey, now: Instant) -> [Action] {
        guard !isFinished, let address = dialling.removeValue(forKey: key) else { return [.close(key)] }
        guard planner.connected(address, incoming: false, now: now) else { return [.close(key)] }
        var peer = Peer(address: address, machine: makeMachine(now: now))
        let wire = peer.machine.start(now: now)
        peers[key] = peer
        peerExchange.connected(key, address: address, outgoing: true)
        var output = Output()
        perform(wire, for: key, now: now, into: &output)
        return output.actions
    }

    /// A dial failed.
    public mutating func connectionFailed(_ key: PeerKey, now: Instant) -> [Action] {
        guard !isFinished, let address = dialling.removeValue(forKey: key) else { return [] }
        planner.connectFailed(address, now: now)
        var output = Output()
        dial(now: now, into: &output)
        return output.actions
    }

    /// A peer connected to us; nil when it must be refused.
    public mutating func accepted(from address: PeerAddress, now: Instant) -> PeerKey? {
        guard !isFinished, planner.connected(address, incoming: true, now: now) else { return nil }
        nextKey += 1
        let key = PeerKey(nextKey)
        peers[key] = Peer(address: address, machine: makeMachine(now: now))
        peerExchange.connected(key, address: address, outgoing: false)
        return key
    }

    /// The connection closed (by the peer, or after a `close` action).
    public mutating func connectionClosed(_ key: PeerKey, now: Instant) -> [Action] {
        guard !isFinished, peers[key] != nil else { return [] }
        var output = Output()
        forget(key, misbehaved: false, now: now, into: &output)
        dial(now: now, into: &output)
        return output.actions
    }

    /// Bytes from a peer: its handshake, then messages.
    public mutating func received(_ bytes: inout ByteBuffer, from key: PeerKey, now: Instant) -> [Action] {
        guard !isFinished, peers[key] != nil else { return [] }
        peers[key]!.inbound.writeBuffer(&bytes)
        var output = Output()
        while let peer = peers[key], !isFinished {
            var inbound = peer.inbound
            var decoder = peer.decoder
            var machine = peer.machine
            var wire: [PeerAction] = []
            do throws(WireError) {
                if !peer.handshaken {
                    guard let handshake = try Handshake.decode(from: &inbound) else { break }
                    wire = machine.receivedHandshake(handshake, now: now)
                    peers[key]?.handshaken = true
                } else {
                    guard let message = try decoder.next(from: &inbound) else { break }
                    wire = machine.received(message, now: now)
                }
            } catch {
                drop(key, error: error, misbehaved: true, now: now, into: &output)
                break
            }
            peers[key]?.inbound = inbound
            peers[key]?.decoder = decoder
            peers[key]?.machine = machine
            perform(wire, for: key, now: now, into: &output)
        }
        // Room for a whole message at most: the decoder refused anything longer already.
        if var peer = peers[key], peer.inbound.readerIndex > 0 {
            peer.inbound.discardReadBytes()
            peers[key] = peer
        }
        return output.actions
    }

    /// Time passed: wire timers, metadata requests that timed out, PEX messages, dials.
    public mutating func tick(now: Instant) -> [Action] {
        guard !isFinished else { return [] }
        var output = Output()
        for key in peers.keys.sorted() {
            guard let deadline = peers[key]?.machine.nextDeadline, now >= deadline,
                let wire = peers[key]?.machine.timerFired(now: now)
            else { continue }
            perform(wire, for: key, now: now, into: &output)
        }
        apply(exchange.tick(now: now), now: now, into: &output)
        for (key, message) in peerExchange.messagesDue(now: now, isSeed: { _ in false }) where !isFinished {
            sendExtended(PeerExchangeMessage.extensionName, payload: ByteBuffer(bytes: message.encoded), to: key, now: now, into: &output)
        }
        if !isFinished { dial(now: now, into: &output) }
        return output.actions
    }

    // MARK: - Internals

    /// Actions collected for one event; consecutive sends to one peer share a buffer.
    struct Output {
        var actions: [Action] = []

        mutating func send(_ write: (inout ByteBuffer) -> Void, to key: PeerKey) {
            if case .send(let last, var buffer)? = actions.last, last == key {
                actions.removeLast()
                write(&buffer)
                actions.append(.send(key, buffer))
            } else {
                var buffer = ByteBuffer()
                write(&buffer)
                actions.append(.send(key, buffer))
            }
        }
    }

    private func makeMachine(now: Instant) -> PeerConnection.StateMachine {
        PeerConnection.StateMachine(
            configuration: .init(
                infoHash: configuration.wireInfoHash, peerID: configuration.peerID,
                extensionHandshake: .shoal(
                    peerExchange: peerExchange.enabled, listenPort: listenPort, client: ExtensionHandshake.shoalClientName)),
            ourPieces: nil, now: now)
    }

    private mutating func dial(now: Instant, into output: inout Output) {
        for address in planner.dialsDue(now: now) {
            nextKey += 1
            let key = PeerKey(nextKey)
            dialling[key] = address
            output.actions.append(.connect(key, address))
        }
    }

    private mutating func forget(_ key: PeerKey, misbehaved: Bool, now: Instant, into output: inout Output) {
        guard let peer = peers.removeValue(forKey: key) else { return }
        peerExchange.left(key)
        planner.disconnected(peer.address, misbehaved: misbehaved, handshaken: peer.handshaken, now: now)
        apply(exchange.peerLeft(key, now: now), now: now, into: &output)
    }

    /// Drops a peer for a wire error (a connection to ourselves marks our address; a ban bans).
    /// `misbehaved` counts a strike (a ban always does).
    private mutating func drop(
        _ key: PeerKey, error: WireError, misbehaved: Bool = false, now: Instant, into output: inout Output
    ) {
        guard let address = peers[key]?.address else { return }
        let isSelf = error.code == .connectedToSelf
        let ban = error.disposition == .ban && !isSelf
        forget(key, misbehaved: !isSelf && (ban || misbehaved), now: now, into: &output)
        output.actions.append(.close(key))
        if isSelf {
            planner.forgetSelf(address)
        } else if ban {
            planner.ban(address)
            output.actions.append(.ban(address))
        }
    }

    private mutating func perform(_ wire: [PeerAction], for key: PeerKey, now: Instant, into output: inout Output) {
        for action in wire {
            guard !isFinished, peers[key] != nil else { return }
            switch action {
            case .sendHandshake(let handshake):
                output.send({ handshake.write(to: &$0) }, to: key)
            case .send(let message):
                output.send({ message.write(to: &$0) }, to: key)
            case .close(let error):
                drop(key, error: error, now: now, into: &output)
                return
            case .emit(let event):
                handle(event, from: key, now: now, into: &output)
            }
        }
    }

    private mutating func handle(_ event: PeerEvent, from key: PeerKey, now: Instant, into output: inout Output) {
        switch event {
        case .connected:
            peerExchange.handshaken(key)
        case .extensionHandshake(let handshake):
            peerExchange.extensionHandshake(key, handshake, now: now)
            if handshake.id(for: MetadataMessage.extensionName) != nil {
                apply(exchange.peerAdvertised(key, metadataSize: handshake.metadataSize, now: now), now: now, into: &output)
            } else {
                apply(exchange.peerLeft(key, now: now), now: now, into: &output)
            }
        case .extensionMessage(let id, let payload):
            receivedExtensionMessage(id: id, payload: payload, from: key, now: now, into: &output)
        default:
            // What the peer has, its interest, its requests: nothing to do before the metadata (the wire
            // machine refuses requests for pieces we do not have).
            return
        }
    }

    private mutating func receivedExtensionMessage(
        id: UInt8, payload: ByteBuffer, from key: PeerKey, now: Instant, into output: inout Output
    ) {
        do throws(WireError) {
            switch id {
            case ExtensionHandshake.metadataMessageID:
                guard let message = try MetadataMessage.decode(payload) else { return }
                if case .request(let piece) = message {
                    // BEP 9: without the whole metadata, every request is rejected.
                    let reject = MetadataMessage.reject(piece: piece).payload
                    sendExtended(MetadataMessage.extensionName, payload: reject, to: key, now: now, into: &output)
                } else {
                    apply(exchange.received(message, from: key, now: now), now: now, into: &output)
                }
            case ExtensionHandshake.peerExchangeMessageID:
                guard peerExchange.enabled else { return }
                let message = try PeerExchangeMessage(decoding: payload)
                let learned = peerExchange.received(message, from: key, now: now, weAreSeed: false, random: &random)
                guard !learned.isEmpty else { return }
                planner.add(learned, source: .pex, now: now)
                dial(now: now, into: &output)
            default:
                return
            }
        } catch {
            drop(key, error: error, misbehaved: true, now: now, into: &output)
        }
    }

    /// Sends an extension message under the id the peer gave `name`; nothing when it gave none.
    private mutating func sendExtended(
        _ name: String, payload: ByteBuffer, to key: PeerKey, now: Instant, into output: inout Output
    ) {
        guard let id = peers[key]?.machine.peerExtensions?.id(for: name),
            let wire = peers[key]?.machine.sendExtended(id: id, payload: payload, now: now)
        else { return }
        perform(wire, for: key, now: now, into: &output)
    }

    /// Carries out what the metadata exchange asks.
    private mutating func apply(_ actions: [MetadataExchange.Action], now: Instant, into output: inout Output) {
        for action in actions {
            switch action {
            case .send(let key, let message):
                sendExtended(MetadataMessage.extensionName, payload: message.payload, to: key, now: now, into: &output)
            case .close(let key, let error):
                drop(key, error: error, misbehaved: true, now: now, into: &output)
            case .completed(let bytes):
                finish(bytes, into: &output)
                return
            }
        }
    }

    /// The metadata is in: close everything, hand over the peers.
    private mutating func finish(_ infoBytes: [UInt8], into output: inout Output) {
        var carried = peerExchange.reachableAddresses()
        var seen = Set(carried)
        // Then the others known, but not the source ports of peers that dialled us (nobody listens there).
        let known = planner.candidates.filter { $0.value.state != .banned && $0.value.source != .incoming }
        for address in known.sorted(by: { $0.value.sequence < $1.value.sequence }).map(\.key)
        where !planner.isBanned(address) && seen.insert(address).inserted {
            carried.append(address)
        }
        for key in peers.keys.sorted() { output.actions.append(.close(key)) }
        peers = [:]
        dialling = [:]
        isFinished = true
        output.actions.append(.metadata(infoBytes, peers: carried))
    }
}
