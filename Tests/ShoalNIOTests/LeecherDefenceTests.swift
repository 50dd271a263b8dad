import NIOCore
import ShoalCore
import ShoalWire
import Testing

/// What a hostile peer serving a Shoal leecher does wrong, and what the leecher must do about it.
enum ServingAttack: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Answers every request with the block's bytes inverted: each piece it sends fails its hash check.
    case wrongBlockData
    /// At the first request, a length prefix of 2 MiB, over every message's limit.
    case oversizedLength
    /// At the first request, the length prefix 0xFFFFFFFF (-1 as a signed integer).
    case negativeLength
    /// At the first request, a `have` whose length prefix says 3 instead of 5.
    case malformedMessage
    /// At the first request, a `piece` message carrying 32 KiB, twice the block limit.
    case oversizedBlock
    /// A bitfield one byte longer than the torrent's.
    case bitfieldTooLong
    /// A bitfield one byte shorter than the torrent's.
    case bitfieldTooShort
    /// A bitfield of the right size with its spare bits set (BEP 3: they must be zero).
    case bitfieldSpareBits
    /// Has only the even pieces, answers requests honestly, and with each answer sends a block of an odd
    /// piece, never requested from it, full of garbage.
    case unrequestedBlocks
    /// Has only the even pieces, answers requests honestly, and at the first one sends blocks outside the
    /// torrent: a piece index past the end, offsets past a piece's end and where offset + length
    /// overflows 32 bits, a block of 1 byte and one of 0 bytes.
    case blocksOutOfRange
    /// Has every piece, chokes, sends 100,000 keep-alives, then unchokes and answers honestly.
    case keepAliveFlood
    /// Has nothing, chokes, sends 20,000 `have` messages (each piece many times over), then unchokes and
    /// answers honestly.
    case haveFlood
    /// Has nothing, then sends a `have` for a piece past the end.
    case haveOutOfRange
    /// At the first request, sends half of the block and closes the connection.
    case disconnectMidBlock

    /// What the leecher must do with the hostile peer.
    enum Verdict: Sendable {
        /// Close the connection, and never dial the peer again.
        case banned
        /// Close the connection (the peer may be retried later).
        case dropped
        /// Keep the connection: nothing it did breaks the protocol (or it is harmless and documented as
        /// ignored), and none of it may reach the disk.
        case tolerated
        /// The peer closed the connection; that is not misbehaviour, so it is dialled again.
        case redialled
    }

    var verdict: Verdict {
        switch self {
        case .wrongBlockData, .bitfieldSpareBits: .banned
        case .oversizedLength, .negativeLength, .malformedMessage, .oversizedBlock, .bitfieldTooLong, .bitfieldTooShort,
            .haveOutOfRange:
            .dropped
        // PeerConnection.StateMachine: "A block we did not request is reported, not fatal" (as libtorrent).
        case .unrequestedBlocks, .blocksOutOfRange, .keepAliveFlood, .haveFlood: .tolerated
        case .disconnectMidBlock: .redialled
        }
    }

    /// Whether the attack needs the leecher to request blocks from the hostile peer.
    var needsRequests: Bool {
        switch self {
        case .bitfieldTooLong, .bitfieldTooShort, .bitfieldSpareBits, .haveOutOfRange:
            false
        default:
            true
        }
    }

    var testDescription: String { rawValue }

    /// The flood's bytes: keep-alives, or `have` messages cycling through the pieces.
    func flood(pieceCount: Int) -> [UInt8] {
        switch self {
        case .keepAliveFlood:
            return [UInt8](repeating: 0, count: 4 * 100_000)
        case .haveFlood:
            var bytes: [UInt8] = []
            bytes.reserveCapacity(9 * 20_000)
            for index in 0..<20_000 {
                let piece = UInt32(index % pieceCount)
                bytes += [0, 0, 0, 5, 4]
                bytes += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: piece >> $0) }
            }
            return bytes
        default:
            return []
        }
    }
}

/// The script of a hostile peer that serves a Shoal leecher.
struct ServingScript: HostileScript {
    let attack: ServingAttack
    let torrent: TestTorrent
    /// The flood, made before the peer starts (so that making it does not delay it).
    let flood: [UInt8]
    private var attacked = false

    init(attack: ServingAttack, torrent: TestTorrent, flood: [UInt8]) {
        self.attack = attack
        self.torrent = torrent
        self.flood = flood
    }

    private var bitfieldBytes: Int { (torrent.pieceCount + 7) / 8 }

    mutating func handshaken(_ output: inout HostileOutput) {
        let count = torrent.pieceCount
        switch attack {
        case .bitfieldTooLong:
            output.send(.bitfield(ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: bitfieldBytes + 1))))
            output.send(.unchoke)
        case .bitfieldTooShort:
            output.send(.bitfield(ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: bitfieldBytes - 1))))
            output.send(.unchoke)
        case .bitfieldSpareBits:
            precondition(count % 8 != 0, "the torrent must leave spare bits")
            output.send(.bitfield(ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: bitfieldBytes))))
            output.send(.unchoke)
        case .unrequestedBlocks, .blocksOutOfRange:
            var even = Bitfield(count: count)
            for piece in stride(from: 0, to: count, by: 2) { _ = even.set(piece) }
            output.send(.bitfield(even))
            output.send(.unchoke)
        case .keepAliveFlood:
            // The unchoke after the flood: the leecher's first request shows it read the whole flood.
            output.send(.haveAll)
            output.send(raw: flood)
            output.send(.unchoke)
        case .haveFlood:
            output.send(.haveNone)
            output.send(raw: flood)
            output.send(.unchoke)
        case .haveOutOfRange:
            output.send(.haveNone)
            output.send(.have(piece: 0))
            output.send(.have(piece: UInt32(count)))
        case .wrongBlockData, .oversizedLength, .negativeLength, .malformedMessage, .oversizedBlock,
            .disconnectMidBlock:
            output.send(.haveAll)
            output.send(.unchoke)
        }
    }

    mutating func received(_ message: PeerMessage, _ output: inout HostileOutput) {
        guard case .request(let request) = message, !attacked else { return }
        let block = Block(piece: Int(request.piece), offset: Int(request.offset), length: Int(request.length))
        guard let bytes = torrent.bytes(of: block) else { return }
        let honest = PeerMessage.piece(piece: request.piece, offset: request.offset, block: ByteBuffer(bytes: bytes))
        switch attack {
        case .wrongBlockData:
            let inverted = bytes.map { ~$0 }
            output.send(.piece(piece: request.piece, offset: request.offset, block: ByteBuffer(bytes: inverted)))
        case .oversizedLength:
            attacked = true
            output.send(raw: [0x00, 0x20, 0x00, 0x00, 7] + [UInt8](repeating: 0xAB, count: 4096))
        case .negativeLength:
            attacked = true
            output.send(raw: [0xFF, 0xFF, 0xFF, 0xFF, 7] + [UInt8](repeating: 0xAB, count: 4096))
        case .malformedMessage:
            attacked = true
            output.send(raw: [0x00, 0x00, 0x00, 0x03, 4, 0x00, 0x00])
        case .oversizedBlock:
            attacked = true
            let double = ByteBuffer(bytes: [UInt8](repeating: 0xAB, count: 32 << 10))
            output.send(.piece(piece: request.piece, offset: request.offset, block: double))
        case .unrequestedBlocks:
            output.send(honest)
            // A block of an odd piece (which this peer does not have, so it is never asked for it).
            let odd = Int(request.piece) + 1 < torrent.pieceCount ? Int(request.piece) + 1 : 1
            let length = torrent.geometry.block(piece: odd, index: 0).length
            let garbage = ByteBuffer(bytes: [UInt8](repeating: 0xEE, count: length))
            output.send(.piece(piece: UInt32(odd), offset: 0, block: garbage))
        case .blocksOutOfRange:
            attacked = true
            let full = ByteBuffer(bytes: [UInt8](repeating: 0xEE, count: 16 << 10))
            let last = UInt32(torrent.pieceCount - 1)
            let pieceLength = UInt32(torrent.geometry.pieceLength)
            for (piece, offset) in [
                (UInt32.max, UInt32(0)), (UInt32(torrent.pieceCount), 0), (1, UInt32.max - 100), (1, 0xFFFF_C000),
                (1, pieceLength), (1, pieceLength - 8192), (last, 16 << 10), (last, 0),
            ] {
                output.send(.piece(piece: piece, offset: offset, block: full))
            }
            output.send(.piece(piece: 1, offset: 0, block: ByteBuffer(bytes: [0xEE])))
            output.send(.piece(piece: 1, offset: 0, block: ByteBuffer()))
            output.send(honest)
            // From now on, answer honestly.
            attacked = false
            return
        case .disconnectMidBlock:
            attacked = true
            var cut = ByteBuffer()
            honest.write(to: &cut)
            output.send(raw: Array(cut.readableBytesView.prefix(PeerMessage.pieceHeaderLength + bytes.count / 2)))
            output.close()
        case .bitfieldTooLong, .bitfieldTooShort, .bitfieldSpareBits, .keepAliveFlood, .haveFlood, .haveOutOfRange:
            output.send(honest)
        }
    }
}

/// A Shoal leecher downloads from an honest Shoal seed and a hostile peer at once, over real loopback
/// sockets: the runtime survives, deals with the hostile peer as the protocol says, and the download
/// completes with every byte equal to the source.
@Suite("A leecher against a hostile peer")
struct LeecherDefenceTests {
    /// After the leecher closes a connection, how long to watch for a redial before deciding the peer is
    /// banned: well over the 200 ms a dropped peer waits with `RuntimePeer.quickRetry` (plus a 250 ms tick).
    static let banWatch: Duration = .milliseconds(1500)

    @Test(arguments: ServingAttack.allCases)
    func downloadCompletesDespite(_ attack: ServingAttack) async throws {
        let torrent = try TestTorrent.standard(seed: 10)
        defer { torrent.remove() }
        let flood = attack.flood(pieceCount: torrent.pieceCount)
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 11)) { await $0.shutdown() }
            var random = SplitMix64(seed: 12)
            let handshake = Handshake(
                reserved: [.fastExtension], infoHash: torrent.infoHash, peerID: PeerID.shoal(using: &random))
            let hostile = cleanup.add(
                try await HostilePeer.listening(handshake: handshake, pieceCount: torrent.pieceCount) {
                    ServingScript(attack: attack, torrent: torrent, flood: flood)
                }
            ) { await $0.shutdown() }
            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, listenOn: "127.0.0.1", seed: 13)) {
                await $0.shutdown()
            }
            // The hostile peer first, so that the seed cannot serve everything before it strikes: the leecher
            // dials it, and once it has had the leecher's handshake (and a request, when the attack needs
            // one) the seed dials the leecher, and both serve it at once.
            leecher.start(peers: [hostile.address])
            let engaged = await eventually(within: .seconds(10)) {
                guard let first = hostile.connections.first, first.victimHandshake != nil else { return false }
                return !attack.needsRequests || !first.requests.isEmpty || first.closedBy != nil
            }
            #expect(engaged, "the hostile peer never got going")
            seed.start(peers: [leecher.address])

            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the download did not complete in 20 s")
            let atCompletion = hostile.connections
            try #require(!atCompletion.isEmpty, "the leecher never dialled the hostile peer")
            if attack.needsRequests {
                #expect(!atCompletion[0].requests.isEmpty, "the leecher asked the hostile peer for nothing")
            }

            switch attack.verdict {
            case .banned, .dropped:
                let dropped = await eventually(within: .seconds(5)) { hostile.connections[0].closedBy != nil }
                #expect(dropped, "the leecher kept the hostile peer")
                #expect(hostile.connections[0].closedBy == .victim)
                if attack.verdict == .banned, let closedAt = hostile.connections[0].closedAt {
                    try await Task.sleep(until: closedAt.advanced(by: Self.banWatch), clock: .continuous)
                    #expect(hostile.connections.count == 1, "the banned peer was dialled again")
                }
            case .tolerated:
                #expect(atCompletion.allSatisfy { $0.closedBy == nil }, "the leecher dropped a peer it should keep")
                #expect(atCompletion[0].bytesWritten >= flood.count, "the flood did not get through")
            case .redialled:
                #expect(atCompletion[0].closedBy == .hostile)
                let redialled = await eventually(within: .seconds(5)) { hostile.connections.count >= 2 }
                #expect(redialled, "a peer that merely disconnected was not dialled again")
            }

            let reports = leecher.reports.snapshot
            #expect(reports.failures.isEmpty)
            #expect(reports.verified.count == torrent.pieceCount, "a piece was verified twice or not at all")
            #expect(Set(reports.verified) == Set(0..<torrent.pieceCount))
            #expect(torrent.isDownloaded(in: leecher.directory), "the downloaded files differ from the source")
        }
    }
}
