import NIOCore
import ShoalCore
import ShoalWire

/// One torrent's swarm, as a pure state machine: its peers (each a wire ``PeerConnection/StateMachine``
/// with its decoder), the ``PiecePicker``, the ``Choker`` and the ``ConnectionPlanner``.
///
/// Events come in — a connection opened or failed, bytes arrived, a block was written or read, a piece
/// was hashed, time passed — and ``TorrentAction``s come out for a runtime to carry out. Time and
/// randomness are given (`now`, a seed); nothing here touches a socket, a file or a clock, so the NIO
/// runtime and the simulator run the very same code.
public struct TorrentStateMachine: Sendable {
    public struct Configuration: Sendable {
        public var infoHash: Digest20
        public var peerID: PeerID
        public var geometry: PieceGeometry
        /// The v1 `pieces` string: 20 bytes of SHA-1 per piece.
        public var pieceHashes: [UInt8]
        public var connections: ConnectionPlanner.Limits
        public var choker: Choker.Configuration
        public var picker: PiecePicker.Configuration
        public var queueDepth: RequestQueueDepth
        /// Pieces with bad data a peer may have contributed to before it is banned.
        public var maxBadPieces: Int
        public var seed: UInt64

        public init(
            infoHash: Digest20, peerID: PeerID, geometry: PieceGeometry, pieceHashes: [UInt8],
            connections: ConnectionPlanner.Limits = .init(), choker: Choker.Configuration = .init(),
            picker: PiecePicker.Configuration = .init(), queueDepth: RequestQueueDepth = .init(),
            maxBadPieces: Int = 2, seed: UInt64 = 0
        ) {
            self.infoHash = infoHash
            self.peerID = peerID
            self.geometry = geometry
            self.pieceHashes = pieceHashes
            self.connections = connections
            self.choker = choker
            self.picker = picker
            self.queueDepth = queueDepth
            self.maxBadPieces = maxBadPieces
            self.seed = seed
        }
    }

    /// One connected (or connecting) peer.
    struct Peer: Sendable {
        var address: PeerAddress
        var machine: PeerConnection.StateMachine
        var decoder: PeerMessageDecoder
        /// Bytes received but not yet decoded: a message split across reads waits here for its rest.
        var inbound = ByteBuffer()
        var handshaken = false
        var received: RateEstimator
        var sent: RateEstimator
        var connectedSince: Instant
        var lastBlockReceived: Instant?
        var unchokedSince: Instant?
        var bytesSent: Int64 = 0
        /// The pieces it has, as reported to the picker (kept to withdraw them when it leaves).
        var pieces: Bitfield
        var requestLimit: Int?
    }

    public let configuration: Configuration
    public private(set) var have: Bitfield
    private(set) var picker: PiecePicker
    private var choker: Choker
    private(set) var planner: ConnectionPlanner
    private(set) var peers: [PeerKey: Peer] = [:]
    private var dialling: [PeerKey: PeerAddress] = [:]
    private var nextKey = 0
    private var random: SplitMix64
    /// Blocks written per piece, to hash a piece once all of its blocks are on disk.
    private var writtenBlocks: [Int: Int] = [:]
    /// Bad pieces each address contributed to.
    private var badPieces: [PeerAddress: Int] = [:]
    private var nextRechoke: Instant?

    /// A torrent that has the pieces in `have` (all verified) and wants the rest.
    public init(configuration: Configuration, have: Bitfield) {
        precondition(have.count == configuration.geometry.pieceCount, "have must cover every piece")
        self.configuration = configuration
        self.have = have
        self.picker = PiecePicker(geometry: configuration.geometry, have: have, configuration: configuration.picker)
        self.choker = Choker(configuration: configuration.choker)
        self.planner = ConnectionPlanner(limits: configuration.connections)
        self.random = SplitMix64(seed: configuration.seed)
    }

    public var isComplete: Bool { have.isComplete }
    public var connectedPeers: Int { peers.count }

    // MARK: - Connections

    /// Learns peer addresses (command line, tracker, DHT, PEX) and dials what the limits allow.
    public mutating func addPeers(_ addresses: [PeerAddress], source: ConnectionPlanner.Source, now: Instant) -> [TorrentAction] {
        planner.add(addresses, source: source, now: now)
        return dial(now: now)
    }

    /// A dial completed: send our handshake.
    public mutating func connectionEstablished(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        guard let address = dialling.removeValue(forKey: key) else { return [.close(key)] }
        guard planner.connected(address, incoming: false, now: now) else { return [.close(key)] }
        var machine = makeMachine(now: now)
        let actions = machine.start(now: now)
        peers[key] = makePeer(address: address, machine: machine, now: now)
        return perform(actions, for: key, now: now)
    }

    /// A dial failed.
    public mutating func connectionFailed(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        guard let address = dialling.removeValue(forKey: key) else { return [] }
        planner.connectFailed(address, now: now)
        return dial(now: now)
    }

    /// A peer connected to us; nil when it must be refused (banned, duplicate, no room).
    public mutating func accepted(from address: PeerAddress, now: Instant) -> PeerKey? {
        guard planner.connected(address, incoming: true, now: now) else { return nil }
        let key = newKey()
        peers[key] = makePeer(address: address, machine: makeMachine(now: now), now: now)
        return key
    }

    /// The connection closed (by the peer, or after a `close` action).
    public mutating func connectionClosed(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        forget(key, misbehaved: false, now: now) + dial(now: now)
    }

    // MARK: - Bytes from a peer

    /// Bytes arrived from a peer: the handshake first, then messages, each fed to its wire machine.
    /// Bytes that do not yet make a whole message are kept for the next call.
    public mutating func received(_ bytes: inout ByteBuffer, from key: PeerKey, now: Instant) -> [TorrentAction] {
        guard peers[key] != nil else { return [] }
        // Messages are decoded from the received buffer itself, so blocks are slices of what the socket read
        // and no byte is copied. Only a message split across reads waits in the peer's `inbound`, and takes
        // from the next read just the bytes that complete it (`PeerMessageFraming`).
        var inbound = ByteBuffer()
        swap(&inbound, &peers[key]!.inbound)
        var actions: [TorrentAction] = []
        while peers[key] != nil {
            if inbound.readableBytes == 0 {
                guard bytes.readableBytes > 0 else { break }
                inbound = bytes
                bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
            } else {
                PeerMessageFraming.complete(&inbound, from: &bytes, handshake: !peers[key]!.handshaken)
            }
            let step: [PeerAction]
            do throws(WireError) {
                if !peers[key]!.handshaken {
                    guard let handshake = try Handshake.decode(from: &inbound) else {
                        if bytes.readableBytes > 0 { continue } else { break }
                    }
                    peers[key]!.handshaken = true
                    step = peers[key]!.machine.receivedHandshake(handshake, now: now)
                } else {
                    var decoder = peers[key]!.decoder
                    let message = try decoder.next(from: &inbound)
                    peers[key]!.decoder = decoder
                    guard let message else {
                        if bytes.readableBytes > 0 { continue } else { break }
                    }
                    step = peers[key]!.machine.received(message, now: now)
                }
            } catch {
                let address = peers[key]?.address
                actions += forget(key, misbehaved: true, now: now) + [.close(key)]
                if error.disposition == .ban, let address {
                    planner.ban(address)
                    actions.append(.ban(address))
                }
                return actions
            }
            actions += perform(step, for: key, now: now)
        }
        if let handshaken = peers[key]?.handshaken {
            peers[key]!.inbound = PeerMessageFraming.keepPartial(inbound, handshake: !handshaken)
        }
        return actions
    }

    // MARK: - Storage answers

    /// A block is on disk; hash its piece once every block is.
    public mutating func blockWritten(_ block: Block, now: Instant) -> [TorrentAction] {
        let count = (writtenBlocks[block.piece] ?? 0) + 1
        guard count >= configuration.geometry.blockCount(ofPiece: block.piece) else {
            writtenBlocks[block.piece] = count
            return []
        }
        writtenBlocks[block.piece] = nil
        return [.hash(piece: block.piece)]
    }

    /// A piece was hashed: keep it and tell everyone, or throw it away and blame who sent it.
    public mutating func pieceHashed(_ piece: Int, digest: Digest20, now: Instant) -> [TorrentAction] {
        let start = piece * 20
        guard start + 20 <= configuration.pieceHashes.count else { return [] }
        var actions: [TorrentAction] = []
        if Array(configuration.pieceHashes[start..<(start + 20)]) == digest.bytes {
            have.set(piece)
            picker.pieceVerified(piece)
            actions.append(.verified(piece: piece))
            for key in peers.keys.sorted() {
                guard var peer = peers[key] else { continue }
                let wire = peer.machine.announceHave(piece: UInt32(piece), now: now)
                peers[key] = peer
                actions += perform(wire, for: key, now: now)
                actions += updateInterest(key, now: now)
            }
            if have.isComplete { actions.append(.completed) }
        } else {
            for contributor in picker.pieceFailed(piece) {
                guard let address = peers[contributor]?.address else { continue }
                let strikes = (badPieces[address] ?? 0) + 1
                badPieces[address] = strikes
                if strikes >= configuration.maxBadPieces {
                    actions += forget(contributor, misbehaved: true, now: now)
                    planner.ban(address)
                    actions += [.close(contributor), .ban(address)]
                }
            }
            for key in peers.keys.sorted() { actions += fillRequests(key, now: now) }
        }
        return actions
    }

    /// A block a peer asked for was read; send it unless the request was cancelled meanwhile.
    public mutating func blockRead(_ block: Block, data: ByteBuffer, for key: PeerKey, now: Instant) -> [TorrentAction] {
        guard var peer = peers[key], let request = BlockRequest(block), peer.machine.isRequestQueued(request) else {
            return []
        }
        let wire = peer.machine.sendBlock(request, data: data, now: now)
        peer.bytesSent += Int64(block.length)
        peer.sent.record(block.length, now: now)
        peers[key] = peer
        return perform(wire, for: key, now: now)
    }

    // MARK: - Time

    /// The clock advanced: wire timers, rechoking every 10 s, and dials that came due.
    public mutating func tick(now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        for key in peers.keys.sorted() {
            guard var peer = peers[key] else { continue }
            let wire = peer.machine.timerFired(now: now)
            peers[key] = peer
            actions += perform(wire, for: key, now: now)
        }
        if nextRechoke.map({ now >= $0 }) ?? true {
            actions += rechoke(now: now)
        }
        return actions + dial(now: now)
    }

    // MARK: - Internals

    private mutating func newKey() -> PeerKey {
        nextKey += 1
        return PeerKey(nextKey)
    }

    private func makeMachine(now: Instant) -> PeerConnection.StateMachine {
        PeerConnection.StateMachine(
            configuration: .init(infoHash: configuration.infoHash, peerID: configuration.peerID),
            ourPieces: have, now: now)
    }

    private func makePeer(address: PeerAddress, machine: PeerConnection.StateMachine, now: Instant) -> Peer {
        Peer(
            address: address, machine: machine, decoder: PeerMessageDecoder(pieceCount: have.count),
            received: RateEstimator(now: now), sent: RateEstimator(now: now), connectedSince: now,
            pieces: Bitfield(count: have.count))
    }

    private mutating func dial(now: Instant) -> [TorrentAction] {
        planner.dialsDue(now: now).map { address in
            let key = newKey()
            dialling[key] = address
            return .connect(key, address)
        }
    }

    /// Drops a peer: its pieces leave the availability counts, its requests go back to the picker.
    private mutating func forget(_ key: PeerKey, misbehaved: Bool, now: Instant) -> [TorrentAction] {
        guard let peer = peers.removeValue(forKey: key) else { return [] }
        _ = picker.peerLeft(key, bitfield: peer.pieces)
        planner.disconnected(peer.address, misbehaved: misbehaved, now: now)
        var actions: [TorrentAction] = []
        // Blocks it held may now go to others.
        for other in peers.keys.sorted() { actions += fillRequests(other, now: now) }
        return actions
    }

    /// Turns the wire machine's actions into the torrent's, reacting to its events.
    private mutating func perform(_ wire: [PeerAction], for key: PeerKey, now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        for action in wire {
            switch action {
            case .sendHandshake(let handshake):
                var buffer = ByteBuffer()
                handshake.write(to: &buffer)
                actions.append(.send(key, buffer))
            case .send(let message):
                // A block goes out from its own buffer, after its header: it is never copied.
                let parts = message.encodedParts
                actions.append(.send(key, parts.head))
                if let body = parts.body { actions.append(.send(key, body)) }
            case .close(let error):
                let misbehaved = error.disposition == .ban
                let address = peers[key]?.address
                actions += forget(key, misbehaved: misbehaved, now: now)
                actions.append(.close(key))
                if misbehaved, let address {
                    planner.ban(address)
                    actions.append(.ban(address))
                }
                return actions
            case .emit(let event):
                actions += handle(event, from: key, now: now)
            }
        }
        return actions
    }

    private mutating func handle(_ event: PeerEvent, from key: PeerKey, now: Instant) -> [TorrentAction] {
        // The peer is changed in place (`peers[key]!`): a copy held across a change would copy its queues.
        guard peers[key] != nil else { return [] }
        switch event {
        case .peerPieces(let bitfield):
            peers[key]!.pieces = bitfield
            if bitfield.isComplete { picker.peerHasAll(key) } else { picker.peerBitfield(bitfield, peer: key) }
            return updateInterest(key, now: now)
        case .peerHas(let piece):
            guard peers[key]!.pieces.set(Int(piece)) else { return [] }
            picker.peerHas(Int(piece), peer: key)
            return updateInterest(key, now: now)
        case .peerUnchoked, .allowedFast:
            return fillRequests(key, now: now)
        case .peerChoked:
            // Everything asked of it goes back to the picker, and its whole-piece reservation ends.
            _ = picker.peerChoked(key)
            return []
        case .requestsReturned(let returned):
            for request in returned { _ = picker.requestFailed(request.block, peer: key) }
            return fillRequests(key, now: now)
        case .requestRejected(let request):
            _ = picker.requestFailed(request.block, peer: key)
            return fillRequests(key, now: now)
        case .blockReceived(let request, let data):
            let block = request.block
            peers[key]!.received.record(block.length, now: now)
            peers[key]!.lastBlockReceived = now
            let arrival = picker.blockReceived(block, from: key)
            var actions: [TorrentAction] = []
            if arrival.isNew { actions.append(.write(block, data)) }
            for other in arrival.cancels where other != key {
                guard peers[other] != nil else { continue }
                let wire = peers[other]!.machine.cancel(request, now: now)
                actions += perform(wire, for: other, now: now)
            }
            return actions + fillRequests(key, now: now)
        case .blockRequested(let request):
            let block = request.block
            guard configuration.geometry.blockIndex(of: block) != nil, have[block.piece] else {
                let wire = peers[key]!.machine.rejectRequest(request, now: now)
                return perform(wire, for: key, now: now)
            }
            return [.read(key, block)]
        case .extensionHandshake(let handshake):
            peers[key]!.requestLimit = handshake.requestQueueLength
            return []
        case .peerInterested:
            // A free slot need not wait for the next rechoke.
            let unchoked = peers.values.filter { !$0.machine.amChoking }.count
            return unchoked < configuration.choker.regularSlots ? rechoke(now: now) : []
        case .connected, .peerNotInterested, .suggested, .unexpectedBlock, .unexpectedReject,
            .requestCancelled, .snubbed, .unsnubbed, .extensionMessage, .dhtPort:
            return []
        }
    }

    /// Interested exactly when the peer has a piece we want.
    private mutating func updateInterest(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        guard let peer = peers[key] else { return [] }
        let wanted = !have.isComplete && picker.wantsAny(of: peer.pieces)
        guard wanted != peer.machine.amInterested else { return fillRequests(key, now: now) }
        let wire = peers[key]!.machine.setInterested(wanted, now: now)
        return perform(wire, for: key, now: now) + fillRequests(key, now: now)
    }

    /// Keeps the peer's request queue as deep as its rate asks (about 3 s of data).
    private mutating func fillRequests(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        // Read what is needed first, so that the peer is then changed in place: a copy of it held
        // across the change would copy its request queues on every block.
        guard let want = requestNeed(key, now: now) else { return [] }
        let blocks = picker.requestBlocks(
            for: key, peerHas: want.pieces, count: want.count, fast: picker.isFast(downloadRate: want.rate),
            random: &random)
        var wire: [PeerAction] = []
        for block in blocks {
            guard let request = BlockRequest(block) else { continue }
            wire += peers[key]!.machine.request(request, now: now)
        }
        return perform(wire, for: key, now: now)
    }

    /// How many more blocks the peer should be asked for, from which pieces, at what rate it sends.
    private func requestNeed(_ key: PeerKey, now: Instant) -> (count: Int, pieces: Bitfield, rate: Double)? {
        guard let peer = peers[key], peer.machine.amInterested, !peer.machine.peerChoking else { return nil }
        let rate = peer.received.rate(now: now)
        let missing =
            configuration.queueDepth.depth(rate: rate, peerLimit: peer.requestLimit)
            - peer.machine.outstandingRequests.count
        return missing > 0 ? (missing, peer.pieces, rate) : nil
    }

    private mutating func rechoke(now: Instant) -> [TorrentAction] {
        nextRechoke = now + configuration.choker.rechokeInterval
        let stats = peers.keys.sorted().compactMap { key -> PeerStats? in
            guard let peer = peers[key] else { return nil }
            return PeerStats(
                key: key, isInterested: peer.machine.peerInterested, amInterested: peer.machine.amInterested,
                downloadRate: peer.received.rate(now: now), uploadRate: peer.sent.rate(now: now),
                connectedSince: peer.connectedSince, lastBlockReceived: peer.lastBlockReceived,
                unchokedSince: peer.unchokedSince, bytesSent: peer.bytesSent)
        }
        let decision = choker.rechoke(peers: stats, now: now, seeding: have.isComplete, random: &random)
        var actions: [TorrentAction] = []
        for (keys, unchoke) in [(decision.newlyChoked, false), (decision.newlyUnchoked, true)] {
            for key in keys {
                guard var peer = peers[key] else { continue }
                let wire = unchoke ? peer.machine.unchoke(now: now) : peer.machine.choke(now: now)
                peer.unchokedSince = unchoke ? now : nil
                peers[key] = peer
                actions += perform(wire, for: key, now: now)
            }
        }
        return actions
    }
}
