import NIOCore
import ShoalCore
import Testing

@testable import ShoalWire

/// Two state machines talking through the encoder and the decoder, with no channel: bytes move
/// from one side's outbox to the other's inbox a chunk at a time (down to one byte), each side
/// runs a toy torrent over its events, and time is virtual.
@Suite("Peer connection pairs")
struct PeerConnectionPairTests {
    typealias Machine = PeerConnection.StateMachine

    /// Three pieces of 20,000 bytes, the last one 5,000: blocks of 16 KiB and shorter tails.
    static let pieceLength = 20_000
    static let totalLength = 45_000
    static let pieceCount = 3

    static func blocks(of piece: Int) -> [BlockRequest] {
        let length = min(pieceLength, totalLength - piece * pieceLength)
        return stride(from: 0, to: length, by: 16384).map {
            BlockRequest(piece: UInt32(piece), offset: UInt32($0), length: UInt32(min(16384, length - $0)))
        }
    }

    /// One end: its machine and decoder, the bytes in flight, and a toy torrent.
    struct Side {
        var machine: Machine
        var decoder: PeerMessageDecoder
        let incoming: Bool
        var head: Handshake.Head?
        var shookHands = false
        var inbox = ByteBuffer()
        var outbox = ByteBuffer()
        var events: [PeerEvent] = []
        var closed: WireError?

        /// Blocks still to get, in order; those requested and not answered; those received.
        var wanted: [BlockRequest] = []
        var requested: Set<BlockRequest> = []
        var received: [BlockRequest: ByteBuffer] = [:]
        /// The peer's requests, served one per step (so that a choke can catch some queued).
        var toServe: [BlockRequest] = []
        var served = 0
        /// Choke the peer after serving this many blocks (once).
        var chokeAfter: Int?

        init(reserved: ReservedBits, peerID: PeerID, pieces: Bitfield, incoming: Bool) {
            let configuration = PeerConnection.Configuration(
                infoHash: WireFixtures.infoHash, peerID: peerID, reserved: reserved,
                extensionHandshake: ExtensionHandshake(messages: ["ut_metadata": 2], client: "\(peerID)"))
            machine = Machine(configuration: configuration, ourPieces: pieces, now: WireFixtures.at(0))
            decoder = PeerMessageDecoder(pieceCount: pieces.count)
            self.incoming = incoming
            for piece in 0..<pieces.count where !pieces[piece] { wanted += PeerConnectionPairTests.blocks(of: piece) }
        }

        var isComplete: Bool { machine.ourPieces?.isComplete ?? false }

        mutating func execute(_ actions: [PeerAction], now: Instant) {
            for action in actions {
                switch action {
                case .sendHandshake(let handshake):
                    handshake.write(to: &outbox)
                case .send(.piece(let piece, let offset, let block)):
                    // As the runtime would: the header, then the block from its own buffer.
                    let request = BlockRequest(piece: piece, offset: offset, length: UInt32(block.readableBytes))
                    PeerMessage.writePieceHeader(request, to: &outbox)
                    outbox.writeImmutableBuffer(block)
                case .send(let message):
                    message.write(to: &outbox)
                case .close(let error):
                    closed = error
                case .emit(let event):
                    events.append(event)
                    react(to: event, now: now)
                }
            }
        }

        private mutating func react(to event: PeerEvent, now: Instant) {
            switch event {
            case .peerPieces, .peerHas, .peerUnchoked, .allowedFast:
                if wanted.contains(where: { machine.peerPieces?[Int($0.piece)] ?? false }) {
                    execute(machine.setInterested(true, now: now), now: now)
                }
                requestMore(now: now)
            case .peerChoked(let returned):
                giveBack(returned)
            case .requestRejected(let block):
                giveBack([block])
            case .requestsReturned(let blocks):
                giveBack(blocks)
            case .blockReceived(let block, let data):
                requested.remove(block)
                #expect(data == WireFixtures.blockData(block), "block \(block) arrived intact")
                received[block] = data
                let piece = Int(block.piece)
                if PeerConnectionPairTests.blocks(of: piece).allSatisfy({ received[$0] != nil }) {
                    execute(machine.announceHave(piece: UInt32(piece), now: now), now: now)
                }
                if wanted.isEmpty && requested.isEmpty {
                    execute(machine.setInterested(false, now: now), now: now)
                }
                requestMore(now: now)
            case .peerInterested:
                execute(machine.unchoke(now: now), now: now)
            case .blockRequested(let block):
                toServe.append(block)
            default:
                break
            }
        }

        private mutating func giveBack(_ blocks: [BlockRequest]) {
            for block in blocks where requested.remove(block) != nil { wanted.insert(block, at: 0) }
        }

        private mutating func requestMore(now: Instant) {
            var index = 0
            while requested.count < 6 && index < wanted.count {
                let block = wanted[index]
                guard machine.peerPieces?[Int(block.piece)] ?? false else {
                    index += 1
                    continue
                }
                let actions = machine.request(block, now: now)
                guard actions == [.send(.request(block))] else { return }
                wanted.remove(at: index)
                requested.insert(block)
                execute(actions, now: now)
            }
        }

        /// Serves one queued request, and chokes when told to.
        mutating func serveOne(now: Instant) {
            guard !toServe.isEmpty else { return }
            let block = toServe.removeFirst()
            let actions = machine.sendBlock(block, data: WireFixtures.blockData(block), now: now)
            if !actions.isEmpty { served += 1 }
            execute(actions, now: now)
            if let limit = chokeAfter, served >= limit {
                chokeAfter = nil
                execute(machine.choke(now: now), now: now)
            }
        }

        /// Reads what arrived: the handshake (an incoming side reads its head first and answers
        /// before the peer id), then messages.
        mutating func process(now: Instant) {
            do {
                if !shookHands {
                    if incoming {
                        if head == nil, let decoded = try Handshake.Head.decode(from: &inbox) {
                            #expect(decoded.infoHash == WireFixtures.infoHash)
                            head = decoded
                            execute(machine.start(now: now), now: now)
                        }
                        guard let head, let peerID = Handshake.decodePeerID(from: &inbox) else { return }
                        shookHands = true
                        execute(machine.receivedHandshake(Handshake(head: head, peerID: peerID), now: now), now: now)
                    } else {
                        guard let handshake = try Handshake.decode(from: &inbox) else { return }
                        shookHands = true
                        execute(machine.receivedHandshake(handshake, now: now), now: now)
                    }
                }
                while closed == nil, let message = try decoder.next(from: &inbox) {
                    execute(machine.received(message, now: now), now: now)
                }
                if inbox.readableBytes == 0 { inbox.clear() }
            } catch {
                execute(machine.close(error, now: now), now: now)
            }
        }
    }

    /// Runs the two sides until no bytes are in flight and nothing is left to serve, moving
    /// `chunk` bytes per step each way.
    static func run(_ a: inout Side, _ b: inout Side, chunk: Int, unchokeWhenIdle: Bool = false) {
        var now = WireFixtures.at(0)
        a.execute(a.machine.start(now: now), now: now)
        for _ in 0..<2_000_000 {
            now = now + .milliseconds(1)
            move(from: &a.outbox, to: &b.inbox, chunk: chunk)
            move(from: &b.outbox, to: &a.inbox, chunk: chunk)
            a.process(now: now)
            b.process(now: now)
            a.serveOne(now: now)
            b.serveOne(now: now)
            a.execute(a.machine.timerFired(now: now), now: now)
            b.execute(b.machine.timerFired(now: now), now: now)
            let idle = a.outbox.readableBytes + b.outbox.readableBytes + a.inbox.readableBytes + b.inbox.readableBytes == 0
                && a.toServe.isEmpty && b.toServe.isEmpty
            if idle && unchokeWhenIdle {
                if a.machine.amChoking && a.machine.peerInterested { a.execute(a.machine.unchoke(now: now), now: now); continue }
                if b.machine.amChoking && b.machine.peerInterested { b.execute(b.machine.unchoke(now: now), now: now); continue }
            }
            if idle || a.closed != nil || b.closed != nil { return }
        }
        Issue.record("the pair did not settle")
    }

    static func move(from source: inout ByteBuffer, to destination: inout ByteBuffer, chunk: Int) {
        guard let bytes = source.readSlice(length: min(chunk, source.readableBytes)) else { return }
        destination.writeImmutableBuffer(bytes)
        if source.readableBytes == 0 { source.clear() }
    }

    static let allBits: ReservedBits = [.extensionProtocol, .fastExtension]

    private func seedAndLeecher(reserved: ReservedBits) -> (seed: Side, leecher: Side) {
        let leecher = Side(reserved: reserved, peerID: WireFixtures.ourID, pieces: Bitfield(count: Self.pieceCount), incoming: false)
        let seed = Side(
            reserved: reserved, peerID: WireFixtures.theirID, pieces: Bitfield(count: Self.pieceCount, allSet: true), incoming: true)
        return (seed, leecher)
    }

    private func expectComplete(_ leecher: Side, _ seed: Side) {
        #expect(leecher.closed == nil && seed.closed == nil)
        #expect(leecher.isComplete)
        #expect(leecher.received.count == (0..<Self.pieceCount).map { Self.blocks(of: $0).count }.reduce(0, +))
        #expect(seed.machine.peerPieces?.setCount == 0, "no have for a piece the seed has (sendsRedundantHaves off)")
        #expect(!leecher.machine.amInterested && !seed.machine.peerInterested)
        #expect(leecher.machine.outstandingRequests.isEmpty && seed.machine.peerRequests.isEmpty)
    }

    @Test(arguments: [1, 5, 13, 1000, Int.max])
    func leecherDownloadsEverythingFromASeed(chunk: Int) {
        var (seed, leecher) = seedAndLeecher(reserved: Self.allBits)
        Self.run(&leecher, &seed, chunk: chunk)
        expectComplete(leecher, seed)
        #expect(leecher.events.contains(.peerPieces(Bitfield(count: Self.pieceCount, allSet: true))), "from have all")
        #expect(seed.events.contains(.peerPieces(Bitfield(count: Self.pieceCount))), "from have none")
        #expect(leecher.machine.peerExtensions?.id(for: "ut_metadata") == 2)
        #expect(seed.machine.peerExtensions?.requestQueueLength == 250)
    }

    @Test(arguments: [1, 7, Int.max])
    func worksWithoutAnyExtension(chunk: Int) {
        var (seed, leecher) = seedAndLeecher(reserved: [])
        Self.run(&leecher, &seed, chunk: chunk)
        expectComplete(leecher, seed)
        #expect(leecher.machine.peerExtensions == nil)
        #expect(leecher.events.contains(.peerPieces(Bitfield(count: Self.pieceCount, allSet: true))), "from a bitfield")
    }

    /// The seed chokes mid-transfer: with the fast extension its queued requests are rejected and
    /// go back to the leecher's picker; without it they are dropped and the leecher gets its
    /// outstanding requests back from the choke. Either way the download completes.
    @Test(arguments: [PeerConnectionPairTests.allBits, []] as [ReservedBits], [1, 9, Int.max])
    func survivesAChokeMidTransfer(reserved: ReservedBits, chunk: Int) {
        var (seed, leecher) = seedAndLeecher(reserved: reserved)
        seed.chokeAfter = 3
        Self.run(&leecher, &seed, chunk: chunk, unchokeWhenIdle: true)
        expectComplete(leecher, seed)
        let chokes = leecher.events.filter { if case .peerChoked = $0 { true } else { false } }
        #expect(chokes.count == 1)
        if reserved.contains(.fastExtension) {
            let rejected = leecher.events.filter { if case .requestRejected = $0 { true } else { false } }
            #expect(!rejected.isEmpty, "queued requests were rejected")
        } else {
            #expect(chokes.first != .peerChoked(returned: []), "outstanding requests came back")
        }
    }

    /// Two partial peers trade: each ends with every piece.
    @Test(arguments: [1, Int.max])
    func partialPeersTrade(chunk: Int) {
        var first = Bitfield(count: Self.pieceCount)
        first.set(0)
        var second = Bitfield(count: Self.pieceCount)
        second.set(1)
        second.set(2)
        var a = Side(reserved: Self.allBits, peerID: WireFixtures.ourID, pieces: first, incoming: false)
        var b = Side(reserved: Self.allBits, peerID: WireFixtures.theirID, pieces: second, incoming: true)
        Self.run(&a, &b, chunk: chunk)
        #expect(a.closed == nil && b.closed == nil)
        #expect(a.isComplete && b.isComplete)
        // Each told the other only of pieces the other lacked: none, since each got those from the other.
        #expect(a.machine.peerPieces == second && b.machine.peerPieces == first)
    }

    /// A peer that goes silent is closed by the inactivity timeout, and keep-alives flow before it.
    @Test func idlePeersExchangeKeepAlivesAndASilentOneIsClosed() {
        var (seed, leecher) = seedAndLeecher(reserved: Self.allBits)
        leecher.wanted = []  // nothing to fetch: the connection idles
        Self.run(&leecher, &seed, chunk: Int.max)
        var now = WireFixtures.at(0)
        var keepAlives = 0
        for _ in 0..<10 {
            now = now + .seconds(60)
            leecher.execute(leecher.machine.timerFired(now: now), now: now)
            seed.execute(seed.machine.timerFired(now: now), now: now)
            keepAlives += leecher.outbox.readableBytes / 4
            Self.move(from: &leecher.outbox, to: &seed.inbox, chunk: Int.max)
            Self.move(from: &seed.outbox, to: &leecher.inbox, chunk: Int.max)
            leecher.process(now: now)
            seed.process(now: now)
        }
        #expect(keepAlives >= 5)
        #expect(leecher.closed == nil && seed.closed == nil)
        // The seed stops talking: the leecher gives up three minutes after the last keep-alive.
        for _ in 0..<4 {
            now = now + .seconds(60)
            leecher.execute(leecher.machine.timerFired(now: now), now: now)
        }
        #expect(leecher.closed?.code == .inactivityTimeout)
    }
}
