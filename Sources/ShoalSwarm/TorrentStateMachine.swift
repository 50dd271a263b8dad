import DequeModule
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
        /// Block payload per second this torrent may send and ask for; nil: no limit.
        public var uploadRateLimit: Int64?
        public var downloadRateLimit: Int64?
        /// One priority per piece (see ``FileLayout/piecePriorities(files:)``); nil: every piece normal.
        public var piecePriorities: [PiecePriority]?
        public var seed: UInt64
        /// The info dictionary exactly as encoded (``Metainfo/infoBytes``): served to peers that ask for it
        /// with `ut_metadata` (BEP 9). Nil: requests are rejected.
        public var infoBytes: [UInt8]?
        /// A private torrent (BEP 27): no peer exchange, and the info dictionary is not served.
        public var isPrivate: Bool
        /// Peer exchange (BEP 11) with peers that speak it; never for a private torrent. Off unless asked for:
        /// the command line turns it on; the simulator's swarms model a tracker and keep their topology.
        public var peerExchange: Bool
        /// The port we listen on, told to peers in the extension handshake (BEP 10 `p`).
        public var listenPort: UInt16?
        /// Our client name in the extension handshake (BEP 10 `v`); nil: none.
        public var clientName: String?

        public init(
            infoHash: Digest20, peerID: PeerID, geometry: PieceGeometry, pieceHashes: [UInt8],
            connections: ConnectionPlanner.Limits = .init(), choker: Choker.Configuration? = nil,
            picker: PiecePicker.Configuration = .init(), queueDepth: RequestQueueDepth = .init(),
            maxBadPieces: Int = 2, uploadRateLimit: Int64? = nil, downloadRateLimit: Int64? = nil,
            piecePriorities: [PiecePriority]? = nil, seed: UInt64 = 0, infoBytes: [UInt8]? = nil,
            isPrivate: Bool = false, peerExchange: Bool = false, listenPort: UInt16? = nil, clientName: String? = nil
        ) {
            self.infoHash = infoHash
            self.peerID = peerID
            self.geometry = geometry
            self.pieceHashes = pieceHashes
            self.connections = connections
            // A seed's round-robin share is 20 pieces, as libtorrent's `seeding_piece_quota`.
            self.choker = choker ?? Choker.Configuration(seedingQuota: 20 * Int64(geometry.pieceLength))
            self.picker = picker
            self.queueDepth = queueDepth
            self.maxBadPieces = maxBadPieces
            self.uploadRateLimit = uploadRateLimit
            self.downloadRateLimit = downloadRateLimit
            self.piecePriorities = piecePriorities
            self.seed = seed
            self.infoBytes = infoBytes
            self.isPrivate = isPrivate
            self.peerExchange = peerExchange
            self.listenPort = listenPort
            self.clientName = clientName
        }
    }

    /// The span the rate a peer sends us is averaged over: "a rolling 20-second average" (Cohen, "Incentives
    /// Build Robustness in BitTorrent", 2003). It ranks peers for tit-for-tat and sizes request queues; over
    /// 10 s a peer whose blocks come every 15 or 20 s (a slow link shared by five) read as fast or idle by
    /// turns, and the choker swapped peers at every round (the lab's swarms took 3–5% longer).
    static let receiveRateWindow = Interval.seconds(20)

    /// One connected (or connecting) peer.
    struct Peer: Sendable {
        var address: PeerAddress
        var machine: PeerConnection.StateMachine
        var decoder: PeerMessageDecoder
        /// Bytes received but not yet decoded: a message split across reads waits here for its rest.
        var inbound = ByteBuffer()
        var handshaken = false
        var peerID: PeerID?
        /// Block payload from and to the peer; their totals are what moved with it.
        var received: RateEstimator
        var sent: RateEstimator
        var connectedSince: Instant
        var lastBlockReceived: Instant?
        var unchokedSince: Instant?
        /// The pieces it has, as reported to the picker (kept to withdraw them when it leaves).
        var pieces: Bitfield
        var requestLimit: Int?
        /// Its requests accepted and not yet read, oldest first.
        var uploadQueue: Deque<Block> = []
        /// Its blocks being read, waiting for upload tokens, or written to its connection and not yet out
        /// (`blockSent`): at most ``uploadDepth(now:)``.
        var uploadsInFlight = 0

        /// How many of its blocks may be on their way at once: about a second of what it has been taking,
        /// at least one. A block is read only when there is room, so what a choke or a cancel withdraws
        /// has not been read, and a slow peer's connection holds one block, not its whole request queue
        /// (which, still being sent after a choke, shared the link with the peers unchoked instead).
        func uploadDepth(now: Instant) -> Int {
            max(1, Int(sent.rate(now: now) / Double(PieceGeometry.blockLength)))
        }

        var transfer: TorrentStatistics.Transfer {
            .init(downloaded: received.totalBytes, uploaded: sent.totalBytes)
        }
    }

    public internal(set) var configuration: Configuration
    public private(set) var have: Bitfield
    private(set) var picker: PiecePicker
    private var choker: Choker
    var planner: ConnectionPlanner
    /// In key order: the order of every loop over the peers (for determinism).
    private(set) var peers = PeerTable<Peer>()
    private var dialling: [PeerKey: PeerAddress] = [:]
    private var nextKey = 0
    var random: SplitMix64
    /// Blocks written per piece, to hash a piece once all of its blocks are on disk (an array: a dictionary
    /// hashed the piece twice per block).
    private var writtenBlocks: [Int32]
    /// Bad pieces each address contributed to.
    private var badPieces: [PeerAddress: Int] = [:]
    private var nextRechoke: Instant?
    /// What peers that left moved, by peer id, and the bytes of pieces that failed (for the statistics).
    private var departed: [PeerID: TorrentStatistics.Transfer] = [:]
    private var wasted: Int64 = 0
    /// Rate limits; made on first use, when there is a `now` to start them at.
    private var uploadBucket: TokenBucket?
    private var downloadBucket: TokenBucket?
    /// Blocks asked of us that wait for upload tokens, oldest first.
    private var uploadWaiting: Deque<(key: PeerKey, block: Block)> = []
    /// Storage for the wire actions of one message, kept between events so that it is not allocated for each
    /// (taken while in use: an event that finds it empty makes its own).
    private var wireScratch: [PeerAction] = []
    /// Whether `.completed` was emitted (or nothing was wanted from the start).
    private var finishedAnnounced: Bool
    /// BEP 11 state of every connection (see TorrentStateMachine+Extensions.swift).
    var peerExchange: PeerExchange
    /// `ut_metadata` requests each peer made (BEP 9 flood protection).
    var metadataRequests: [PeerKey: Int] = [:]
    /// Pieces of the info dictionary sent to peers (BEP 9).
    public internal(set) var metadataPiecesServed = 0

    /// A torrent that has the pieces in `have` (all verified) and wants the rest.
    public init(configuration: Configuration, have: Bitfield) {
        precondition(have.count == configuration.geometry.pieceCount, "have must cover every piece")
        self.configuration = configuration
        self.have = have
        self.picker = PiecePicker(geometry: configuration.geometry, have: have, configuration: configuration.picker)
        if let priorities = configuration.piecePriorities { picker.setPriorities(priorities) }
        self.finishedAnnounced = picker.remainingCount == 0
        self.choker = Choker(configuration: configuration.choker)
        self.planner = ConnectionPlanner(limits: configuration.connections)
        self.random = SplitMix64(seed: configuration.seed)
        self.writtenBlocks = Array(repeating: 0, count: configuration.geometry.pieceCount)
        self.peerExchange = PeerExchange(enabled: configuration.peerExchange && !configuration.isPrivate)
    }

    /// Every piece is verified.
    public var isComplete: Bool { have.isComplete }
    /// Every wanted piece (priority above skip) is verified.
    public var isFinished: Bool { picker.remainingCount == 0 }
    public var connectedPeers: Int { peers.count }
    /// Dials under way.
    public var pendingDials: Int { dialling.count }
    /// When a known peer may next be dialled (nil: none waits, or the connection limits leave no room).
    public var nextDialTime: Instant? { planner.nextDialTime }

    /// When ``tick(now:)`` next has something to do (nil: nothing until another event): a peer's wire timer
    /// (handshake, keep-alive, inactivity, snubbing, a cancelled request's answer), the rechoke, a dial that
    /// may come due; while uploads wait for tokens or downloads are rate-limited, every tick. A runtime may
    /// tick more often (the NIO runtime ticks every 250 ms); the simulator ticks only then, so that a swarm
    /// of thousands does not visit every connection of every peer each simulated second. Events only move
    /// this later, except those that add peers or connections, after which a runtime should ask again.
    ///
    /// `mutating` only to read each connection's timer where it is stored (see
    /// ``PeerConnection/StateMachine/nextDeadline(of:)``); nothing changes.
    public mutating func nextTickDeadline(now: Instant) -> Instant? {
        if !uploadWaiting.isEmpty || configuration.downloadRateLimit != nil { return now }
        var deadline = planner.nextDialTime
        func consider(_ instant: Instant?) {
            guard let instant else { return }
            deadline = min(deadline ?? instant, instant)
        }
        if !peers.isEmpty { consider(nextRechoke ?? now) }
        consider(peerExchange.nextDeadline)
        for index in peers.values.indices {
            consider(PeerConnection.StateMachine.nextDeadline(of: &peers.values[index].machine))
        }
        return deadline
    }

    // MARK: - Connections

    /// Learns peer addresses (command line, tracker, DHT, PEX) and dials what the limits allow.
    public mutating func addPeers(_ addresses: [PeerAddress], source: ConnectionPlanner.Source, now: Instant) -> [TorrentAction] {
        planner.add(addresses, source: source, now: now)
        var sink = ActionSink()
        dial(now: now, into: &sink)
        return sink.finish()
    }

    /// A dial completed: send our handshake.
    public mutating func connectionEstablished(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        guard let address = dialling.removeValue(forKey: key) else { return [.close(key)] }
        guard planner.connected(address, incoming: false, now: now) else { return [.close(key)] }
        var machine = makeMachine(now: now)
        let wire = machine.start(now: now)
        add(makePeer(address: address, machine: machine, now: now), as: key)
        peerExchange.connected(key, address: address, outgoing: true)
        var sink = ActionSink()
        perform(wire, for: key, now: now, into: &sink)
        return sink.finish()
    }

    /// A dial failed.
    public mutating func connectionFailed(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        guard let address = dialling.removeValue(forKey: key) else { return [] }
        planner.connectFailed(address, now: now)
        var sink = ActionSink()
        dial(now: now, into: &sink)
        return sink.finish()
    }

    /// A peer connected to us; nil when it must be refused (banned, duplicate, no room).
    public mutating func accepted(from address: PeerAddress, now: Instant) -> PeerKey? {
        guard planner.connected(address, incoming: true, now: now) else { return nil }
        let key = newKey()
        add(makePeer(address: address, machine: makeMachine(now: now), now: now), as: key)
        peerExchange.connected(key, address: address, outgoing: false)
        return key
    }

    /// The connection closed (by the peer, or after a `close` action).
    public mutating func connectionClosed(_ key: PeerKey, now: Instant) -> [TorrentAction] {
        var sink = ActionSink()
        forget(key, misbehaved: false, now: now, into: &sink)
        dial(now: now, into: &sink)
        return sink.finish()
    }

    // MARK: - Bytes from a peer

    /// Bytes arrived from a peer: the handshake first, then messages, each fed to its wire machine.
    /// Bytes that do not yet make a whole message are kept for the next call.
    public mutating func received(_ bytes: inout ByteBuffer, from key: PeerKey, now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        received(&bytes, from: key, now: now, into: &actions)
        return actions
    }

    /// ``received(_:from:now:)``, its actions appended to `actions`: a runtime that collects the actions of
    /// several events saves an array per event.
    public mutating func received(
        _ bytes: inout ByteBuffer, from key: PeerKey, now: Instant, into actions: inout [TorrentAction]
    ) {
        // Messages are decoded from the received buffer itself, so blocks are slices of what the socket read
        // and no byte is copied. Only a message split across reads waits in the peer's `inbound`, and takes
        // from the next read just the bytes that complete it (`PeerMessageFraming`).
        var inbound = ByteBuffer()
        guard var handshaken = withPeer(key, { peer in swap(&inbound, &peer.inbound); return peer.handshaken })
        else { return }
        var sink = ActionSink(continuing: &actions)
        // One array for the wire actions of every message (`wireScratch` keeps its storage between calls).
        var wire: [PeerAction] = []
        swap(&wire, &wireScratch)
        defer {
            wire.removeAll(keepingCapacity: true)
            swap(&wire, &wireScratch)
        }
        while true {
            // A block's head that ended the last read, and this one starting with the block: the block is
            // sliced from here, not copied after its head.
            var split = false
            if inbound.readableBytes == 0 {
                guard bytes.readableBytes > 0 else { break }
                inbound = bytes
                bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
            } else if handshaken, let block = PeerMessageDecoder.blockLength(afterPieceHead: inbound),
                bytes.readableBytes >= block
            {
                split = true
            } else {
                PeerMessageFraming.complete(&inbound, from: &bytes, handshake: !handshaken)
            }
            wire.removeAll(keepingCapacity: true)
            do throws(WireError) {
                if split {
                    let head = inbound
                    let decoded = try withPeer(key) { peer throws(WireError) -> Bool in
                        guard let message = try peer.decoder.nextPiece(head: head, body: &bytes) else { return false }
                        peer.machine.received(message, now: now, into: &wire)
                        return true
                    }
                    // The head and the block were checked before, so it decodes (or throws).
                    guard decoded == true else { break }
                    inbound = ByteBuffer()
                } else if !handshaken {
                    guard let handshake = try Handshake.decode(from: &inbound) else {
                        if bytes.readableBytes > 0 { continue } else { break }
                    }
                    let known = withPeer(key) { peer -> Bool in
                        peer.handshaken = true
                        peer.peerID = handshake.peerID
                        wire = peer.machine.receivedHandshake(handshake, now: now)
                        return true
                    }
                    guard known == true else { break }
                    handshaken = true
                } else {
                    // One lookup of the peer decodes the message and hands it to its wire machine.
                    let decoded = try withPeer(key) { peer throws(WireError) -> Bool in
                        guard let message = try peer.decoder.next(from: &inbound) else { return false }
                        peer.machine.received(message, now: now, into: &wire)
                        return true
                    }
                    guard let decoded else { break }
                    guard decoded else {
                        if bytes.readableBytes > 0 { continue } else { break }
                    }
                }
            } catch {
                drop(key, misbehaved: true, ban: error.disposition == .ban, now: now, into: &sink)
                actions = sink.finish()
                return
            }
            perform(wire, for: key, now: now, into: &sink)
        }
        withPeer(key) { $0.inbound = PeerMessageFraming.keepPartial(inbound, handshake: !$0.handshaken) }
        actions = sink.finish()
    }

    // MARK: - Storage answers

    /// A block is on disk; hash its piece once every block is.
    public mutating func blockWritten(_ block: Block, now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        blockWritten(block, now: now, into: &actions)
        return actions
    }

    /// ``blockWritten(_:now:)``, its actions appended to `actions`.
    public mutating func blockWritten(_ block: Block, now: Instant, into actions: inout [TorrentAction]) {
        guard writtenBlocks.indices.contains(block.piece) else { return }
        let count = Int(writtenBlocks[block.piece]) + 1
        guard count >= configuration.geometry.blockCount(ofPiece: block.piece) else {
            writtenBlocks[block.piece] = Int32(count)
            return
        }
        writtenBlocks[block.piece] = 0
        actions.append(.hash(piece: block.piece))
    }

    /// A piece was hashed: keep it and tell everyone, or throw it away and blame who sent it.
    public mutating func pieceHashed(_ piece: Int, digest: Digest20, now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        pieceHashed(piece, digest: digest, now: now, into: &actions)
        return actions
    }

    /// ``pieceHashed(_:digest:now:)``, its actions appended to `actions`.
    public mutating func pieceHashed(_ piece: Int, digest: Digest20, now: Instant, into actions: inout [TorrentAction]) {
        let start = piece * 20
        guard start + 20 <= configuration.pieceHashes.count else { return }
        var sink = ActionSink(continuing: &actions)
        if configuration.pieceHashes[start..<(start + 20)].elementsEqual(digest.bytes) {
            have.set(piece)
            picker.pieceVerified(piece)
            sink.append(.verified(piece: piece))
            for key in sortedPeerKeys() {
                guard let wire = withPeer(key, { $0.machine.announceHave(piece: UInt32(piece), now: now) })
                else { continue }
                perform(wire, for: key, now: now, into: &sink)
                updateInterest(key, now: now, into: &sink)
            }
            announceIfFinished(into: &sink)
        } else {
            wasted += Int64(configuration.geometry.length(ofPiece: piece))
            for contributor in picker.pieceFailed(piece) {
                guard let address = withPeer(contributor, { $0.address }) else { continue }
                let strikes = (badPieces[address] ?? 0) + 1
                badPieces[address] = strikes
                if strikes >= configuration.maxBadPieces {
                    drop(contributor, misbehaved: true, ban: true, now: now, into: &sink)
                }
            }
            for key in sortedPeerKeys() { fillRequests(key, now: now, into: &sink) }
        }
        actions = sink.finish()
    }

    /// A block a peer asked for was read; send it unless the request was cancelled meanwhile.
    public mutating func blockRead(_ block: Block, data: ByteBuffer, for key: PeerKey, now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        blockRead(block, data: data, for: key, now: now, into: &actions)
        return actions
    }

    /// ``blockRead(_:data:for:now:)``, its actions appended to `actions`.
    public mutating func blockRead(
        _ block: Block, data: ByteBuffer, for key: PeerKey, now: Instant, into actions: inout [TorrentAction]
    ) {
        guard let request = BlockRequest(block) else { return }
        var wire: [PeerAction] = []
        swap(&wire, &wireScratch)
        defer {
            wire.removeAll(keepingCapacity: true)
            swap(&wire, &wireScratch)
        }
        let sent = withPeer(key) { peer -> Bool in
            guard peer.machine.isRequestQueued(request) else {
                peer.uploadsInFlight -= 1
                return false
            }
            peer.machine.sendBlock(request, data: data, now: now, into: &wire)
            peer.sent.record(block.length, now: now)
            return true
        }
        guard let sent else { return }
        var sink = ActionSink(continuing: &actions)
        if sent {
            perform(wire, for: key, now: now, into: &sink)
            sink.append(.notifySent(key, block))
        } else {
            // Cancelled or choked while it was read: room for the next one.
            startUploads(key, now: now, into: &sink)
        }
        actions = sink.finish()
    }

    /// What was written to the peer's connection up to a block's `notifySent` has left: the block is out,
    /// and the peer's next accepted request may be read.
    public mutating func blockSent(_ block: Block, to key: PeerKey, now: Instant) -> [TorrentAction] {
        var actions: [TorrentAction] = []
        blockSent(block, to: key, now: now, into: &actions)
        return actions
    }

    /// ``blockSent(_:to:now:)``, its actions appended to `actions`.
    public mutating func blockSent(_ block: Block, to key: PeerKey, now: Instant, into actions: inout [TorrentAction]) {
        guard withPeer(key, { $0.uploadsInFlight = max(0, $0.uploadsInFlight - 1) }) != nil else { return }
        var sink = ActionSink(continuing: &actions)
        startUploads(key, now: now, into: &sink)
        actions = sink.finish()
    }

    // MARK: - Time

    /// The clock advanced: wire timers, rechoking every 10 s, and dials that came due.
    public mutating func tick(now: Instant) -> [TorrentAction] {
        var sink = ActionSink()
        for key in sortedPeerKeys() {
            // Most peers have no timer due: tell so from where the peer is stored, without a call that
            // returns (and a perform of) nothing.
            guard let index = peers.index(forKey: key),
                let deadline = PeerConnection.StateMachine.nextDeadline(of: &peers.values[index].machine), now >= deadline
            else { continue }
            let wire = peers.values[index].machine.timerFired(now: now)
            if !wire.isEmpty { perform(wire, for: key, now: now, into: &sink) }
        }
        if nextRechoke.map({ now >= $0 }) ?? true {
            rechoke(now: now, into: &sink)
        }
        releaseUploads(now: now, into: &sink)
        if configuration.downloadRateLimit != nil {
            for key in sortedPeerKeys() { fillRequests(key, now: now, into: &sink) }
        }
        sendPeerExchange(now: now, into: &sink)
        dial(now: now, into: &sink)
        return sink.finish()
    }

    // MARK: - Rate limits and statistics

    /// Changes the rate limits (bytes of block payload per second; nil: none).
    public mutating func setRateLimits(upload: Int64?, download: Int64?, now: Instant) -> [TorrentAction] {
        configuration.uploadRateLimit = upload.flatMap { $0 > 0 ? $0 : nil }
        configuration.downloadRateLimit = download.flatMap { $0 > 0 ? $0 : nil }
        uploadBucket = configuration.uploadRateLimit.map { Self.bucket(rate: $0, now: now) }
        downloadBucket = configuration.downloadRateLimit.map { Self.bucket(rate: $0, now: now) }
        var sink = ActionSink()
        releaseUploads(now: now, into: &sink)
        for key in sortedPeerKeys() { fillRequests(key, now: now, into: &sink) }
        return sink.finish()
    }

    /// Changes what is wanted: one priority per piece (a list of another length is ignored). Interest
    /// follows; `.completed` comes when every wanted piece is verified.
    public mutating func setPiecePriorities(_ priorities: [PiecePriority], now: Instant) -> [TorrentAction] {
        guard priorities.count == have.count else { return [] }
        configuration.piecePriorities = priorities
        picker.setPriorities(priorities)
        if !isFinished { finishedAnnounced = false }
        var sink = ActionSink()
        announceIfFinished(into: &sink)
        for key in sortedPeerKeys() { updateInterest(key, now: now, into: &sink) }
        return sink.finish()
    }

    /// What has moved so far, and with whom.
    public func statistics(now: Instant) -> TorrentStatistics {
        var statistics = TorrentStatistics()
        statistics.byPeerID = departed
        statistics.wasted = wasted
        statistics.piecesVerified = have.setCount
        statistics.pieceCount = have.count
        statistics.piecesRemaining = picker.remainingCount
        for (key, peer) in zip(peers.keys, peers.values) {
            if let id = peer.peerID { statistics.byPeerID[id, default: .init()].add(peer.transfer) }
            let down = peer.received.rate(now: now)
            let up = peer.sent.rate(now: now)
            statistics.downloadRate += down
            statistics.uploadRate += up
            statistics.peers.append(
                .init(
                    key: key, address: peer.address, peerID: peer.peerID, transfer: peer.transfer, downloadRate: down,
                    uploadRate: up, pieces: peer.pieces.setCount, amChoking: peer.machine.amChoking,
                    peerChoking: peer.machine.peerChoking))
        }
        // Every block comes after a handshake, so the counts by peer id hold every byte moved.
        for transfer in statistics.byPeerID.values {
            statistics.downloaded += transfer.downloaded
            statistics.uploaded += transfer.uploaded
        }
        return statistics
    }

    /// A token bucket for a rate limit: bursts of half a second's worth (two ticks, so that waiting
    /// uploads released at a tick lose no tokens), and never less than a few blocks, so a block always fits.
    private static func bucket(rate: Int64, now: Instant) -> TokenBucket {
        TokenBucket(rate: rate, burst: max(rate / 2, Int64(4 * PieceGeometry.blockLength)), now: now)
    }

    /// Reads the blocks that wait for upload tokens, as far as the tokens go.
    private mutating func releaseUploads(now: Instant, into sink: inout ActionSink) {
        guard !uploadWaiting.isEmpty else { return }
        var bucket = uploadBucket ?? configuration.uploadRateLimit.map { Self.bucket(rate: $0, now: now) }
        var freed: [PeerKey] = []
        while let (key, block) = uploadWaiting.first {
            // A request cancelled, rejected or of a peer gone meanwhile costs nothing.
            if let request = BlockRequest(block), withPeer(key, { $0.machine.isRequestQueued(request) }) == true {
                if bucket != nil {
                    guard bucket!.available(now: now) >= block.length else { break }
                    _ = bucket!.consume(upTo: block.length, now: now)
                }
                sink.append(.read(key, block))
            } else if withPeer(key, { $0.uploadsInFlight -= 1 }) != nil {
                freed.append(key)
            }
            uploadWaiting.removeFirst()
        }
        uploadBucket = bucket
        for key in freed { startUploads(key, now: now, into: &sink) }
    }

    /// Reads the peer's next accepted requests while fewer than its ``Peer/uploadDepth(now:)`` blocks are on
    /// their way (through the upload tokens first, under a rate limit). Requests withdrawn meanwhile (a cancel,
    /// a choke) are dropped unread.
    private mutating func startUploads(_ key: PeerKey, now: Instant, into sink: inout ActionSink) {
        var started: [Block] = []
        withPeer(key) { peer in
            let depth = peer.uploadDepth(now: now)
            while peer.uploadsInFlight < depth, let block = peer.uploadQueue.popFirst() {
                guard let request = BlockRequest(block), peer.machine.isRequestQueued(request) else { continue }
                peer.uploadsInFlight += 1
                started.append(block)
            }
        }
        guard !started.isEmpty else { return }
        if configuration.uploadRateLimit == nil {
            for block in started { sink.append(.read(key, block)) }
        } else {
            for block in started { uploadWaiting.append((key, block)) }
            releaseUploads(now: now, into: &sink)
        }
    }

    // MARK: - Internals

    /// `completed`, once each time every wanted piece becomes verified.
    private mutating func announceIfFinished(into sink: inout ActionSink) {
        guard isFinished, !finishedAnnounced else { return }
        finishedAnnounced = true
        sink.append(.completed)
    }

    /// Drops a peer and closes its connection; with `ban`, bans its address (it sent bad data or broke the
    /// protocol in a way that warrants it). `misbehaved` counts a strike against it.
    mutating func drop(_ key: PeerKey, misbehaved: Bool, ban: Bool, now: Instant, into sink: inout ActionSink) {
        let address = withPeer(key) { $0.address }
        forget(key, misbehaved: misbehaved, now: now, into: &sink)
        sink.append(.close(key))
        if ban, let address {
            planner.ban(address)
            sink.append(.ban(address))
        }
    }

    /// Runs `body` on the peer where it is stored, to read or change it; nil when there is no such peer.
    /// `peers[key]` would copy the peer (every queue and buffer of it retained, then released);
    /// `values[index]` does not.
    @discardableResult
    mutating func withPeer<Result, Failure: Error>(
        _ key: PeerKey, _ body: (inout Peer) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let index = peers.index(forKey: key) else { return nil }
        return try body(&peers.values[index])
    }

    private mutating func newKey() -> PeerKey {
        nextKey += 1
        return PeerKey(nextKey)
    }

    private func makeMachine(now: Instant) -> PeerConnection.StateMachine {
        PeerConnection.StateMachine(
            configuration: .init(
                infoHash: configuration.infoHash, peerID: configuration.peerID,
                extensionHandshake: ourExtensionHandshake),
            ourPieces: have, now: now)
    }

    private func makePeer(address: PeerAddress, machine: PeerConnection.StateMachine, now: Instant) -> Peer {
        Peer(
            address: address, machine: machine, decoder: PeerMessageDecoder(pieceCount: have.count),
            received: RateEstimator(window: Self.receiveRateWindow, now: now), sent: RateEstimator(now: now),
            connectedSince: now,
            pieces: Bitfield(count: have.count))
    }

    mutating func dial(now: Instant, into sink: inout ActionSink) {
        for address in planner.dialsDue(now: now) {
            let key = newKey()
            dialling[key] = address
            sink.append(.connect(key, address))
        }
    }

    /// The connected peers in key order (the order every loop over them follows, for determinism).
    private func sortedPeerKeys() -> [PeerKey] {
        peers.keys
    }

    /// Adds a connected peer. (A dialled peer's key is older than those of peers accepted while it connected,
    /// so it may go anywhere in the order.)
    private mutating func add(_ peer: Peer, as key: PeerKey) {
        peers.updateValue(peer, forKey: key)
    }

    /// Drops a peer: its pieces leave the availability counts, its requests go back to the picker.
    private mutating func forget(_ key: PeerKey, misbehaved: Bool, now: Instant, into sink: inout ActionSink) {
        guard let peer = peers.removeValue(forKey: key) else { return }
        // What it moved joins its peer id's count (kept with the peer while connected: no hashing per block).
        if let id = peer.peerID { departed[id, default: .init()].add(peer.transfer) }
        _ = picker.peerLeft(key, bitfield: peer.pieces)
        peerExchange.left(key)
        metadataRequests[key] = nil
        planner.disconnected(peer.address, misbehaved: misbehaved, handshaken: peer.handshaken, now: now)
        // Blocks it held may now go to others.
        for other in sortedPeerKeys() { fillRequests(other, now: now, into: &sink) }
    }

    /// Turns the wire machine's actions into the torrent's, reacting to its events.
    mutating func perform(_ wire: [PeerAction], for key: PeerKey, now: Instant, into sink: inout ActionSink) {
        for action in wire {
            switch action {
            case .sendHandshake(let handshake):
                sink.sendHandshake(handshake, to: key)
            case .send(let message):
                sink.send(message, to: key)
            case .close(let error) where error.code == .connectedToSelf:
                // Our own address, given back by a tracker or the DHT: never dial it again, but ban no host
                // (on loopback or behind a NAT the host is shared with real peers).
                let address = withPeer(key) { $0.address }
                drop(key, misbehaved: false, ban: false, now: now, into: &sink)
                if let address { planner.forgetSelf(address) }
                return
            case .close(let error):
                let ban = error.disposition == .ban
                drop(key, misbehaved: ban, ban: ban, now: now, into: &sink)
                return
            case .emit(let event):
                handle(event, from: key, now: now, into: &sink)
            }
        }
    }

    private mutating func handle(_ event: PeerEvent, from key: PeerKey, now: Instant, into sink: inout ActionSink) {
        // The peer is read and changed where it is stored (`withPeer`): `peers[key]` would copy it.
        switch event {
        case .peerPieces(let bitfield):
            guard withPeer(key, { $0.pieces = bitfield }) != nil else { return }
            if bitfield.isComplete { picker.peerHasAll(key) } else { picker.peerBitfield(bitfield, peer: key) }
            updateInterest(key, now: now, into: &sink)
        case .peerHas(let piece):
            guard withPeer(key, { $0.pieces.set(Int(piece)) }) == true else { return }
            picker.peerHas(Int(piece), peer: key)
            updateInterest(key, now: now, into: &sink)
        case .peerUnchoked, .allowedFast:
            fillRequests(key, now: now, into: &sink)
        case .peerChoked:
            // Everything asked of it goes back to the picker, and its whole-piece reservation ends.
            guard peers.contains(key) else { return }
            _ = picker.peerChoked(key)
        case .requestsReturned(let returned):
            guard peers.contains(key) else { return }
            for request in returned { _ = picker.requestFailed(request.block, peer: key) }
            fillRequests(key, now: now, into: &sink)
        case .requestRejected(let request):
            guard peers.contains(key) else { return }
            _ = picker.requestFailed(request.block, peer: key)
            fillRequests(key, now: now, into: &sink)
        case .blockReceived(let request, let data):
            let block = request.block
            // One lookup of the peer records the block and reads what a refill needs (nothing but the cancels
            // below can change the peer before the refill).
            let queueDepth = configuration.queueDepth
            let known = withPeer(key) { peer -> RequestNeed? in
                peer.received.record(block.length, now: now)
                peer.lastBlockReceived = now
                return Self.requestNeed(of: &peer, queueDepth: queueDepth, now: now)
            }
            guard let need = known else { return }
            let arrival = picker.blockReceived(block, from: key)
            if arrival.isNew { sink.append(.write(block, data)) }
            var cancelled = false
            for other in arrival.cancels where other != key {
                guard let wire = withPeer(other, { $0.machine.cancel(request, now: now) }) else { continue }
                perform(wire, for: other, now: now, into: &sink)
                cancelled = true
            }
            if cancelled {
                fillRequests(key, now: now, into: &sink)
            } else {
                fillRequests(key, need: need, now: now, into: &sink)
            }
        case .blockRequested(let request):
            let block = request.block
            guard configuration.geometry.blockIndex(of: block) != nil, have[block.piece] else {
                guard let wire = withPeer(key, { $0.machine.rejectRequest(request, now: now) }) else { return }
                perform(wire, for: key, now: now, into: &sink)
                return
            }
            let accepted: Void? = withPeer(key) { peer in
                peer.uploadQueue.append(block)
                // Requests withdrawn (cancelled, dropped by a choke) leave the queue when reached; a peer that
                // asks and cancels while its connection is full must not grow it without bound.
                if peer.uploadQueue.count > 2 * peer.machine.configuration.maxPeerRequests {
                    let machine = peer.machine
                    peer.uploadQueue = Deque(
                        peer.uploadQueue.filter { BlockRequest($0).map(machine.isRequestQueued) ?? false })
                }
            }
            guard accepted != nil else { return }
            startUploads(key, now: now, into: &sink)
        case .extensionHandshake(let handshake):
            withPeer(key) { $0.requestLimit = handshake.requestQueueLength }
            peerExchange.extensionHandshake(key, handshake, now: now)
        case .extensionMessage(let id, let payload):
            receivedExtensionMessage(id: id, payload: payload, from: key, now: now, into: &sink)
        case .connected:
            peerExchange.handshaken(key)
        case .peerInterested:
            guard peers.contains(key) else { return }
            // A free slot need not wait for the next rechoke: the peer takes it at once (as in libtorrent),
            // and the next rechoke ranks it with the others. (A full rechoke here ran for nearly every change
            // of interest in a busy swarm.) Only a peer that has given as much as it got: one that takes more
            // (a free-rider, after its first turn) waits for the rechoke, which ranks it behind the givers.
            var unchoked = 0
            for index in peers.indices where !PeerConnection.StateMachine.interest(of: &peers.values[index].machine).amChoking {
                unchoked += 1
            }
            guard unchoked < configuration.choker.regularSlots, let stats = stats(of: key, now: now),
                stats.balance >= 0, !choker.isSnubbed(stats, now: now)
            else { return }
            let change = withPeer(key) { peer in
                peer.unchokedSince = now
                return peer.machine.unchoke(now: now)
            }
            if let wire = change { perform(wire, for: key, now: now, into: &sink) }
        case .snubbed:
            guard peers.contains(key) else { return }
            // Nothing came for a minute although blocks were asked: cancel them so that other peers can
            // fetch them (a late answer is still taken); it gets one request at a time until it sends again.
            let stuck = withPeer(key) { $0.machine.outstandingRequests.map(\.block) } ?? []
            var wire: [PeerAction] = []
            for request in stuck {
                wire += withPeer(key) { $0.machine.cancel(request, now: now) } ?? []
                _ = picker.requestFailed(request.block, peer: key)
            }
            perform(wire, for: key, now: now, into: &sink)
            for other in sortedPeerKeys() where other != key { fillRequests(other, now: now, into: &sink) }
        case .peerNotInterested, .suggested, .unexpectedBlock, .unexpectedReject, .requestCancelled, .unsnubbed,
            .dhtPort:
            return
        }
    }

    /// Interested exactly when the peer has a piece we want.
    private mutating func updateInterest(_ key: PeerKey, now: Instant, into sink: inout ActionSink) {
        guard let index = peers.index(forKey: key) else { return }
        let amInterested = PeerConnection.StateMachine.interest(of: &peers.values[index].machine).amInterested
        // The pieces are passed where they are stored: a peer's pieces read out for `picker.wantsAny` were
        // retained (a cache miss on a cold object for every peer at each piece verified).
        let wanted = !isFinished && Self.wantsAny(&picker, of: &peers.values[index].pieces)
        if wanted != amInterested {
            let wire = withPeer(key) { $0.machine.setInterested(wanted, now: now) } ?? []
            perform(wire, for: key, now: now, into: &sink)
        }
        fillRequests(key, now: now, into: &sink)
    }

    /// ``PiecePicker/wantsAny(of:)`` with the pieces where they are stored (see ``updateInterest(_:now:into:)``).
    private static func wantsAny(_ picker: inout PiecePicker, of pieces: inout Bitfield) -> Bool {
        picker.wantsAny(of: pieces)
    }

    /// Keeps the peer's request queue as deep as its rate asks (about 3 s of data).
    private mutating func fillRequests(_ key: PeerKey, now: Instant, into sink: inout ActionSink) {
        // Read what is needed first, so that the peer is then changed in place: a copy of it held
        // across the change would copy its request queues on every block.
        fillRequests(key, need: requestNeed(key, now: now), now: now, into: &sink)
    }

    /// `fillRequests`, with the peer's need already read (`requestNeed`).
    private mutating func fillRequests(_ key: PeerKey, need: RequestNeed?, now: Instant, into sink: inout ActionSink) {
        guard var want = need else { return }
        if let limit = configuration.downloadRateLimit {
            // Ask for no more than the limit lets arrive: tokens are spent when a block is requested.
            let blockBytes = PieceGeometry.blockLength
            var bucket = downloadBucket ?? Self.bucket(rate: limit, now: now)
            want.count = min(want.count, bucket.available(now: now) / blockBytes)
            guard want.count > 0 else {
                downloadBucket = bucket
                return
            }
            _ = bucket.consume(upTo: want.count * blockBytes, now: now)
            downloadBucket = bucket
        }
        let blocks = picker.requestBlocks(
            for: key, peerHas: want.pieces, count: want.count, fast: picker.isFast(downloadRate: want.rate),
            duplicates: want.idle, random: &random)
        guard !blocks.isEmpty else { return }
        let requests = blocks.compactMap { BlockRequest($0) }
        guard let wire = withPeer(key, { $0.machine.request(requests, now: now) }) else { return }
        // Requests the wire machine cannot send (one cancelled but not yet answered, a full queue) go back to
        // the picker here, without a refill: refilling would pick the same blocks again, without end (an
        // infinite recursion the simulator found).
        var sent: [PeerAction] = []
        sent.reserveCapacity(wire.count)
        for action in wire {
            if case .emit(.requestsReturned(let returned)) = action {
                for request in returned { _ = picker.requestFailed(request.block, peer: key) }
            } else {
                sent.append(action)
            }
        }
        perform(sent, for: key, now: now, into: &sink)
    }

    /// How many more blocks a peer should be asked for, from which pieces, at what rate it sends.
    /// `idle`: nothing asked of it is in flight (only then may endgame duplicate others' requests).
    private typealias RequestNeed = (count: Int, pieces: Bitfield, rate: Double, idle: Bool)

    private mutating func requestNeed(_ key: PeerKey, now: Instant) -> RequestNeed? {
        let queueDepth = configuration.queueDepth
        // Read in place (`withPeer`): `peers[key]` would copy the peer, once per block received.
        return withPeer(key) { Self.requestNeed(of: &$0, queueDepth: queueDepth, now: now) } ?? nil
    }

    private static func requestNeed(of peer: inout Peer, queueDepth: RequestQueueDepth, now: Instant) -> RequestNeed? {
        let state = PeerConnection.StateMachine.requestQueueState(of: &peer.machine)
        guard state.amInterested, !state.peerChoking else { return nil }
        let rate = peer.received.rate(now: now)
        let outstanding = state.outstanding
        let depth = state.snubbed ? 1 : queueDepth.depth(rate: rate, peerLimit: peer.requestLimit)
        let missing = depth - outstanding
        // Refill in batches (a quarter of the queue, at most 16 blocks) while requests are in flight:
        // one pick for several blocks costs much less than a pick for every block that arrives.
        let batch = outstanding == 0 ? 1 : max(1, min(16, depth / 4))
        return missing >= batch ? (missing, peer.pieces, rate, outstanding == 0) : nil
    }

    /// What the choker weighs of a peer.
    private mutating func stats(of key: PeerKey, now: Instant) -> PeerStats? {
        withPeer(key) { peer in
            let interest = PeerConnection.StateMachine.interest(of: &peer.machine)
            return PeerStats(
                key: key, isInterested: interest.peerInterested, amInterested: interest.amInterested,
                downloadRate: peer.received.rate(now: now), uploadRate: peer.sent.rate(now: now),
                connectedSince: peer.connectedSince, lastBlockReceived: peer.lastBlockReceived,
                unchokedSince: peer.unchokedSince, bytesSent: peer.sent.totalBytes,
                bytesReceived: peer.received.totalBytes)
        }
    }

    private mutating func rechoke(now: Instant, into sink: inout ActionSink) {
        nextRechoke = now + configuration.choker.rechokeInterval
        let candidates = sortedPeerKeys().compactMap { stats(of: $0, now: now) }
        let decision = choker.rechoke(peers: candidates, now: now, seeding: isFinished, random: &random)
        for (keys, unchoke) in [(decision.newlyChoked, false), (decision.newlyUnchoked, true)] {
            for key in keys {
                let change = withPeer(key) { peer in
                    peer.unchokedSince = unchoke ? now : nil
                    return unchoke ? peer.machine.unchoke(now: now) : peer.machine.choke(now: now)
                }
                guard let wire = change else { continue }
                perform(wire, for: key, now: now, into: &sink)
            }
        }
    }
}
