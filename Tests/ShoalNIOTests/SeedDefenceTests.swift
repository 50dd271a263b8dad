import NIOCore
import ShoalCore
import ShoalWire
import Testing

/// What a hostile leecher does to a Shoal seed, and what the seed must do about it.
enum LeechingAttack: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Once unchoked, requests a block of a piece past the last one.
    case requestPastLastPiece
    /// Once unchoked, requests blocks that are not in the torrent though their piece is: at and past a
    /// piece's end, where offset + length overflows 32 bits, off the 16 KiB grid, longer or shorter than
    /// the block; then one true block.
    case requestPastPieceEnd
    /// Once unchoked, requests 32 KiB at once (BEP 3: implementations close connections that request
    /// more than 16 KiB).
    case requestTooLong
    /// Once unchoked, requests 0 bytes.
    case requestZeroLength
    /// Never says it is interested, so stays choked, and requests 40 blocks.
    case requestWhileChoked
    /// Once unchoked, sends 3,000 distinct requests in one burst: every block of the torrent, and blocks
    /// off the 16 KiB grid.
    case requestFlood
    /// Once unchoked, cancels 200 blocks it never requested (some not in the torrent), then requests one.
    case cancelUnknownBlocks
    /// Sends a handshake for another torrent.
    case wrongInfoHash

    /// What the seed must do with the hostile leecher.
    enum Verdict: Sendable {
        /// Close the connection and serve it nothing.
        case dropped
        /// Keep the connection, answer every request exactly once (BEP 6: a block, or a `reject
        /// request`), and serve only true blocks.
        case tolerated
    }

    var verdict: Verdict {
        switch self {
        case .requestPastLastPiece, .requestTooLong, .requestZeroLength, .wrongInfoHash: .dropped
        case .requestPastPieceEnd, .requestWhileChoked, .requestFlood, .cancelUnknownBlocks: .tolerated
        }
    }

    var testDescription: String { rawValue }

    /// The requests the attack sends (none for the cancels' and the handshake's).
    func requests(_ torrent: TestTorrent) -> [BlockRequest] {
        let geometry = torrent.geometry
        let count = UInt32(torrent.pieceCount)
        let last = count - 1
        let pieceLength = UInt32(geometry.pieceLength)
        let block = BlockRequest.standardLength
        switch self {
        case .requestPastLastPiece:
            return [BlockRequest(piece: count, offset: 0, length: block)]
        case .requestPastPieceEnd:
            return [
                BlockRequest(piece: 0, offset: pieceLength, length: block),
                BlockRequest(piece: 0, offset: pieceLength - 8192, length: block),
                BlockRequest(piece: 0, offset: 0xFFFF_C000, length: block),
                BlockRequest(piece: 0, offset: UInt32.max - 100, length: block),
                BlockRequest(piece: 1, offset: 0, length: 8192),
                BlockRequest(piece: last, offset: block, length: block),
                BlockRequest(piece: last, offset: 0, length: block),
                BlockRequest(piece: 2, offset: block, length: block),
            ]
        case .requestTooLong:
            return [BlockRequest(piece: 0, offset: 0, length: 2 * block)]
        case .requestZeroLength:
            return [BlockRequest(piece: 0, offset: 0, length: 0)]
        case .requestWhileChoked:
            return (0..<40).map { geometry.block(piece: $0 / 2, index: $0 % 2) }.map { BlockRequest($0)! }
        case .requestFlood:
            let blocks = (0..<torrent.pieceCount).flatMap { geometry.blocks(ofPiece: $0) }.map { BlockRequest($0)! }
            let offGrid = (0..<(3000 - blocks.count)).map { index in
                BlockRequest(piece: UInt32(index % torrent.pieceCount), offset: UInt32(1 + index), length: block)
            }
            return blocks + offGrid
        case .cancelUnknownBlocks:
            return [BlockRequest(piece: 3, offset: 0, length: block)]
        case .wrongInfoHash:
            return []
        }
    }

    /// The cancels the attack sends, before its requests.
    func cancels(_ torrent: TestTorrent) -> [BlockRequest] {
        guard self == .cancelUnknownBlocks else { return [] }
        let count = UInt32(torrent.pieceCount)
        let block = BlockRequest.standardLength
        return (0..<200).map { index in
            switch index % 4 {
            case 0: BlockRequest(piece: UInt32(index / 4) % count, offset: 0, length: block)
            case 1: BlockRequest(piece: count + UInt32(index), offset: 0, length: block)
            case 2: BlockRequest(piece: 0, offset: UInt32.max - UInt32(index), length: block)
            default: BlockRequest(piece: UInt32.max, offset: UInt32(index), length: 1)
            }
        }
    }
}

/// The script of a hostile leecher attacking a Shoal seed.
struct LeechingScript: HostileScript {
    let attack: LeechingAttack
    let torrent: TestTorrent
    private var attacked = false

    init(attack: LeechingAttack, torrent: TestTorrent) {
        self.attack = attack
        self.torrent = torrent
    }

    mutating func handshaken(_ output: inout HostileOutput) {
        switch attack {
        case .wrongInfoHash:
            break
        case .requestWhileChoked:
            output.send(.haveNone)
            strike(&output)
        default:
            output.send(.haveNone)
            output.send(.interested)
        }
    }

    mutating func received(_ message: PeerMessage, _ output: inout HostileOutput) {
        if message == .unchoke, attack != .requestWhileChoked { strike(&output) }
    }

    private mutating func strike(_ output: inout HostileOutput) {
        guard !attacked else { return }
        attacked = true
        for block in attack.cancels(torrent) { output.send(.cancel(block)) }
        for block in attack.requests(torrent) { output.send(.request(block)) }
    }
}

/// A Shoal seed serves an honest Shoal leecher while a hostile leecher attacks it, over real loopback
/// sockets: the seed survives, deals with the attacker as the protocol says, and the honest leecher's
/// download completes with every byte equal to the source.
@Suite("A seed against a hostile leecher")
struct SeedDefenceTests {
    @Test(arguments: LeechingAttack.allCases)
    func seedServesDespite(_ attack: LeechingAttack) async throws {
        let torrent = try TestTorrent.standard(seed: 20)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 21)) { await $0.shutdown() }
            seed.start()
            var random = SplitMix64(seed: 22)
            let infoHash =
                attack == .wrongInfoHash ? Digest20(bytes: (0..<20).map { _ in UInt8(7) })! : torrent.infoHash
            let handshake = Handshake(
                reserved: [.fastExtension], infoHash: infoHash, peerID: PeerID.shoal(using: &random))
            let hostile = cleanup.add(
                HostilePeer.dialling(handshake: handshake, pieceCount: torrent.pieceCount) {
                    LeechingScript(attack: attack, torrent: torrent)
                }
            ) { await $0.shutdown() }
            try await hostile.dial(seed.address)
            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, seed: 23)) { await $0.shutdown() }
            leecher.start(peers: [seed.address])

            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the honest leecher's download did not complete in 20 s")
            #expect(torrent.isDownloaded(in: leecher.directory), "the downloaded files differ from the source")
            #expect(leecher.reports.snapshot.failures.isEmpty)
            #expect(seed.reports.snapshot.failures.isEmpty)

            let requests = attack.requests(torrent)
            switch attack.verdict {
            case .dropped:
                let dropped = await eventually(within: .seconds(5)) { hostile.connections[0].closedBy != nil }
                #expect(dropped, "the seed kept the attacker")
                let connection = hostile.connections[0]
                #expect(connection.closedBy == .victim)
                #expect(connection.blocks.isEmpty, "the seed served the attacker")
                if attack == .wrongInfoHash {
                    #expect(connection.messages.isEmpty, "the seed talked to a peer of another torrent")
                }
            case .tolerated:
                // Every request is answered exactly once: by its block, or by a reject.
                let answered = await eventually(within: .seconds(5)) {
                    let connection = hostile.connections[0]
                    return connection.blocks.count + connection.rejects.count >= requests.count
                }
                #expect(answered, "the seed did not answer every request")
                let connection = hostile.connections[0]
                #expect(connection.isOpen, "the seed dropped a peer it should keep")
                let served = connection.blocks.map { BlockRequest($0.block)! }
                #expect(served.count + connection.rejects.count == requests.count)
                #expect(Set(served + connection.rejects) == Set(requests))
                for (block, data) in connection.blocks {
                    #expect(torrent.bytes(of: block) == data, "the seed served wrong bytes for \(block)")
                }
                switch attack {
                case .requestPastPieceEnd:
                    #expect(served == [requests.last!], "the seed served a block that is not in the torrent")
                case .requestWhileChoked:
                    #expect(served.isEmpty, "the seed served a peer it chokes")
                case .requestFlood:
                    #expect(served.allSatisfy { torrent.geometry.blockIndex(of: $0.block) != nil })
                    #expect(!served.isEmpty, "the seed served none of the flood")
                case .cancelUnknownBlocks:
                    #expect(served == requests, "the seed answered a cancel, or not the request after them")
                default:
                    break
                }
            }
        }
    }

    /// DESIGN.md: "Memory per peer and per torrent is bounded". A leecher that keeps requesting blocks but
    /// never reads them must not make the seed hold every block it asked for: once the socket takes no more,
    /// the seed must stop (stop reading the peer's requests, or stop serving them). Here the leecher asks
    /// for the whole torrent 32 times (64 MB); what it then receives is what the seed and the kernel held.
    @Test
    func aLeecherThatDoesNotReadCannotPileBlocksUpInTheSeed() async throws {
        let torrent = try TestTorrent.standard(seed: 50)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 51)) { await $0.shutdown() }
            seed.start()
            var random = SplitMix64(seed: 52)
            let handshake = Handshake(
                reserved: [.fastExtension], infoHash: torrent.infoHash, peerID: PeerID.shoal(using: &random))
            let hostile = cleanup.add(
                HostilePeer.dialling(handshake: handshake, pieceCount: torrent.pieceCount, keepsBlocks: false) {
                    StalledLeecherScript()
                }
            ) { await $0.shutdown() }
            try await hostile.dial(seed.address)
            let unchoked = await eventually(within: .seconds(5)) {
                hostile.connections[0].messages.contains(.unchoke)
            }
            try #require(unchoked, "the seed never unchoked the leecher")

            let everyBlock = (0..<torrent.pieceCount).flatMap { torrent.geometry.blocks(ofPiece: $0) }
            let rounds = 32
            for _ in 0..<rounds {
                try await hostile.send(everyBlock.map { .request(BlockRequest($0)!) }, on: 0)
                try await Task.sleep(for: .milliseconds(40))
            }
            try await Task.sleep(for: .milliseconds(500))
            try await hostile.resumeReading()
            // Read until the blocks stop coming (nothing new for 500 ms), for at most 20 s.
            var received = -1
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(20))
            while clock.now < deadline, hostile.connections[0].blockBytes != received {
                received = hostile.connections[0].blockBytes
                try await Task.sleep(for: .milliseconds(500))
            }
            let requested = rounds * Int(torrent.layout.totalLength)
            // The kernel's socket buffers on loopback hold a few MB (Linux: up to 4 MB to send, and what the
            // receive window had grown to); the seed itself should hold little more than one round.
            #expect(received < 16 << 20, "the seed held \(received) of the \(requested) bytes asked of it")
            #expect(seed.reports.snapshot.failures.isEmpty)
        }
    }

    /// A leecher that sends a bitfield with spare bits set is banned (WireError.disposition). A ban only
    /// means something if the peer cannot come straight back: its next connection, from the same host,
    /// must be refused.
    @Test
    func aBannedLeecherCannotReconnect() async throws {
        let torrent = try TestTorrent.standard(seed: 30)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 31)) { await $0.shutdown() }
            seed.start()
            var random = SplitMix64(seed: 32)
            let handshake = Handshake(
                reserved: [.fastExtension], infoHash: torrent.infoHash, peerID: PeerID.shoal(using: &random))
            let hostile = cleanup.add(
                HostilePeer.dialling(handshake: handshake, pieceCount: torrent.pieceCount) {
                    SpareBitsScript(pieceCount: torrent.pieceCount)
                }
            ) { await $0.shutdown() }
            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, seed: 33)) { await $0.shutdown() }
            leecher.start(peers: [seed.address])

            // On Linux all of 127/8 is loopback: the attacker comes from a host of its own, so that a ban of
            // its host (not only of its address and port) leaves the honest leecher alone.
            #if os(Linux)
            let source: String? = "127.0.0.2"
            #else
            let source: String? = nil
            #endif
            try await hostile.dial(seed.address, from: source)
            let dropped = await eventually(within: .seconds(5)) { hostile.connections[0].closedBy != nil }
            #expect(dropped, "the seed kept a peer that sent spare bits")
            #expect(hostile.connections[0].closedBy == .victim)
            #expect(hostile.connections[0].victimHandshake != nil)

            try await hostile.dial(seed.address, from: source)
            let refused = await eventually(within: .seconds(5)) { hostile.connections[1].closedBy != nil }
            #expect(refused, "the seed accepted a banned peer again")
            #expect(hostile.connections[1].closedBy == .victim)
            #expect(hostile.connections[1].victimHandshake == nil, "the seed answered a banned peer's handshake")

            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the honest leecher's download did not complete in 20 s")
            #expect(torrent.isDownloaded(in: leecher.directory), "the downloaded files differ from the source")
        }
    }
}

/// A leecher that asks to be unchoked, and once it is, stops reading.
struct StalledLeecherScript: HostileScript {
    func handshaken(_ output: inout HostileOutput) {
        output.send(.haveNone)
        output.send(.interested)
    }

    func received(_ message: PeerMessage, _ output: inout HostileOutput) {
        if message == .unchoke { output.stopReading() }
    }
}

/// A leecher whose first message is a bitfield with the spare bits set (BEP 3: they must be zero).
struct SpareBitsScript: HostileScript {
    let pieceCount: Int

    func handshaken(_ output: inout HostileOutput) {
        var bytes = [UInt8](repeating: 0, count: (pieceCount + 7) / 8)
        bytes[bytes.count - 1] = 0xFF
        output.send(.bitfield(ByteBuffer(bytes: bytes)))
        output.send(.interested)
    }

    func received(_ message: PeerMessage, _ output: inout HostileOutput) {}
}
