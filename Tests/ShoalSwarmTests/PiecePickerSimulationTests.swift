import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalSwarm

/// Downloads driven end to end through the picker, with peers answering requests in random order.
@Suite("PiecePicker simulations")
struct PiecePickerSimulationTests {
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func aSimulatedDownloadFinishesWithEveryPieceOnce(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let pieceLength = 3 * PieceGeometry.blockLength
        let geometry = PieceGeometry(pieceCount: 60, pieceLength: pieceLength, totalLength: Int64(59 * pieceLength + 20_000))!
        var picker = PiecePicker(geometry: geometry)
        let seeder: PeerKey = 1
        let fast: PeerKey = 2
        let liar: PeerKey = 3  // its first contribution to any piece is corrupt
        var bitfields: [PeerKey: Bitfield] = [:]
        for key in 2...6 {
            var field = Bitfield(count: geometry.pieceCount)
            for piece in 0..<geometry.pieceCount where random.next(upTo: 100) < 30 + 10 * key { field.set(piece) }
            bitfields[PeerKey(key)] = field
            picker.peerBitfield(field, peer: PeerKey(key))
        }
        var queues: [PeerKey: [Block]] = [:]
        var verified = [Int](repeating: 0, count: geometry.pieceCount)
        var failed = Set<Int>()
        var liarPieces = Set<Int>()
        var duplicatesOutsideEndgame = 0
        var steps = 0

        while !picker.isFinished, steps < 20_000 {
            steps += 1
            if steps == 150 {
                bitfields[seeder] = Bitfield(count: geometry.pieceCount, allSet: true)
                picker.peerHasAll(seeder)
            }
            for peer in bitfields.keys.sorted() {
                let depth = peer == fast ? 8 : 4
                let wanted = depth - queues[peer, default: []].count
                guard wanted > 0 else { continue }
                let endgame = picker.isEndgame
                let blocks = picker.requestBlocks(
                    for: peer, peerHas: bitfields[peer]!, count: wanted, fast: peer == fast, random: &random)
                if !endgame {
                    let elsewhere = Set(queues.filter { $0.key != peer }.values.joined())
                    duplicatesOutsideEndgame += blocks.filter(elsewhere.contains).count
                }
                queues[peer, default: []] += blocks
            }
            let busy = queues.filter { !$0.value.isEmpty }.keys.sorted()
            guard let peer = busy.randomElement(using: &random) else { continue }
            let roll = random.next(upTo: 100)
            if roll < 2 {
                picker.peerChoked(peer)
                queues[peer] = []
                continue
            }
            let block = queues[peer]!.removeFirst()
            if roll < 10 {
                picker.requestFailed(block, peer: peer)
                continue
            }
            let arrival = picker.blockReceived(block, from: peer)
            for other in arrival.cancels { queues[other]?.removeAll { $0 == block } }
            if arrival.isNew, peer == liar, !failed.contains(block.piece) { liarPieces.insert(block.piece) }
            guard arrival.completesPiece else { continue }
            if liarPieces.remove(block.piece) != nil {
                let blamed = picker.pieceFailed(block.piece)
                #expect(blamed.contains(liar))
                failed.insert(block.piece)
            } else {
                picker.pieceVerified(block.piece)
                verified[block.piece] += 1
            }
        }
        #expect(picker.isFinished, "unfinished after \(steps) steps")
        #expect(picker.have.isComplete)
        #expect(verified.allSatisfy { $0 == 1 })
        #expect(duplicatesOutsideEndgame == 0)
        #expect(picker.downloadingPieces.isEmpty)
        #expect(picker.violations().isEmpty)
    }

    /// A large torrent and a crowded swarm: every operation stays cheap enough that this runs in well under
    /// a second in a debug build. Not timed; it shows the structures hold up at scale.
    @Test func aHundredThousandPiecesAndTwoHundredPeers() {
        var random = SeededGenerator(seed: 42)
        let pieceCount = 100_000
        let pieceLength = 2 * PieceGeometry.blockLength
        let geometry = PieceGeometry(
            pieceCount: pieceCount, pieceLength: pieceLength, totalLength: Int64(pieceCount * pieceLength))!
        var picker = PiecePicker(geometry: geometry)
        var bitfields: [Bitfield] = []
        for peer in 0..<200 {
            if peer < 20 {
                bitfields.append(Bitfield(count: pieceCount, allSet: true))
                picker.peerHasAll(PeerKey(peer))
                continue
            }
            // Leechers hold a random stretch of the torrent, as peers that download rarest first do not, but
            // it makes availability uneven.
            var bytes = [UInt8](repeating: 0, count: (pieceCount + 7) / 8)
            let start = random.next(upTo: bytes.count)
            let length = random.next(upTo: bytes.count / 4)
            var word: UInt64 = 0
            for index in start..<min(bytes.count - 1, start + length) {
                if index & 7 == 0 { word = random.next() }
                bytes[index] = UInt8(truncatingIfNeeded: word >> (UInt64(index & 7) * 8))
            }
            let field = Bitfield(count: pieceCount, bytes: bytes)!
            bitfields.append(field)
            picker.peerBitfield(field, peer: PeerKey(peer))
        }
        var inFlight: [(peer: Int, block: Block)] = []
        for round in 0..<3 {
            for peer in 0..<200 {
                let blocks = picker.requestBlocks(for: PeerKey(peer), peerHas: bitfields[peer], count: 40, random: &random)
                inFlight += blocks.map { (peer, $0) }
            }
            #expect(Set(inFlight.map(\.block)).count == inFlight.count, "round \(round): a block requested twice")
            for (peer, block) in inFlight {
                if picker.blockReceived(block, from: PeerKey(peer)).completesPiece { picker.pieceVerified(block.piece) }
            }
            inFlight = []
            // Peers come and go, and announce pieces.
            guard round < 2 else { break }
            for peer in stride(from: 20 + round, to: 200, by: 19) {
                picker.peerLeft(PeerKey(peer), bitfield: bitfields[peer])
                picker.peerBitfield(bitfields[peer], peer: PeerKey(peer))
                let piece = random.next(upTo: pieceCount)
                if bitfields[peer].set(piece) { picker.peerHas(piece, peer: PeerKey(peer)) }
            }
        }
        #expect(picker.have.setCount > 5000)
        for piece in stride(from: 0, to: pieceCount, by: 997) {
            #expect(picker.availability(of: piece) == bitfields.filter { $0[piece] }.count)
        }
        #expect(picker.violations().isEmpty)
    }
}
