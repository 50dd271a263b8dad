import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalSwarm

@Suite("PiecePicker")
struct PiecePickerTests {
    // MARK: - Rarest first

    @Test func picksTheRarestPiece() {
        var fixture = PickerFixture(availability: "4432341")
        #expect(fixture.pick(4).pieces == [6])
        #expect(fixture.pick(4) == fixture.picker.geometry.blocks(ofPiece: 6))
        let twelve = fixture.pick(12).pieces
        #expect(twelve.count == 3 && twelve.prefix(2) == [6, 3] && [2, 4].contains(twelve[2]), "then the next rarest")
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func breaksTiesAtRandom() {
        var fixture = PickerFixture(availability: "2121212")
        var chosen: [Int: Int] = [:]
        for seed in 0..<300 { chosen[fixture.pick(1, seed: UInt64(seed))[0].piece, default: 0] += 1 }
        #expect(Set(chosen.keys) == [1, 3, 5])
        for piece in [1, 3, 5] { #expect(chosen[piece, default: 0] > 50, "piece \(piece): \(chosen)") }
    }

    @Test func neverPicksWhatWeHaveOrThePeerLacksOrSkipped() {
        var fixture = PickerFixture(availability: "1111111", have: "* *    ", priority: "1111101")
        let peerHas = bits("1111011")
        #expect(fixture.pick(100, peerHas: peerHas).pieces.sorted() == [1, 3, 6])
        #expect(fixture.pick(100, peerHas: bits("1010010")).isEmpty)
    }

    @Test func highPriorityComesBeforeRarity() {
        var fixture = PickerFixture(availability: "1119", priority: "1112")
        #expect(fixture.pick(4).pieces == [3])
        #expect(fixture.pick(8).pieces.first == 3)
    }

    @Test func skipsUnavailablePiecesWhenNoSeedIsConnected() {
        // Piece 0 has no peer; the peer's bitfield claims it, but the picker trusts its counts.
        var fixture = PickerFixture(availability: "0222")
        #expect(!fixture.pick(4).pieces.contains(0))
        fixture.picker.peerHasAll(60)
        #expect(fixture.pick(4).pieces == [0])
        #expect(fixture.picker.availability(of: 0) == 1)
        #expect(fixture.picker.availability(of: 1) == 3)
    }

    // MARK: - Random first

    @Test func picksAtRandomUntilFourPiecesAreComplete() {
        func firstPieces(have: String) -> Set<Int> {
            var chosen = Set<Int>()
            for seed in 0..<200 {
                var fixture = PickerFixture(
                    availability: "19999999", have: have, configuration: .init(randomFirstPieces: 4))
                chosen.insert(fixture.pick(1, seed: UInt64(seed))[0].piece)
            }
            return chosen
        }
        #expect(firstPieces(have: "").count > 4, "random: common pieces too")
        #expect(firstPieces(have: "     ***") == Set(0..<5), "3 had: still random")
        #expect(firstPieces(have: "    ****") == [0], "4 had: rarest first")
    }

    // MARK: - Partial pieces

    @Test func finishesPartialPiecesFirst() {
        // Piece 2 is started (blocks 0 and 1 received); piece 0 is rarer.
        var fixture = PickerFixture(availability: "1222", partial: "  3 ")
        #expect(fixture.pick(2) == [block(fixture.picker, 2, 2), block(fixture.picker, 2, 3)])
        #expect(fixture.pick(6).pieces == [2, 0])
    }

    @Test func continuesEveryPartialPieceBeforeStartingAnother() {
        var fixture = PickerFixture(availability: "12222")
        fixture.picker.blockRequested(block(fixture.picker, 3, 0), by: 7)
        fixture.picker.blockRequested(block(fixture.picker, 1, 0), by: 7)
        #expect(fixture.picker.downloadingPieces == [1, 3])
        let picked = fixture.pick(7)
        #expect(Set(picked.prefix(6).map(\.piece)) == [1, 3])
        #expect(picked.last?.piece == 0, "then the rarest new piece")
    }

    @Test func highPriorityPartialsComeFirst() {
        var fixture = PickerFixture(availability: "2222", priority: "1112", partial: "1  1")
        #expect(fixture.pick(3).pieces == [3])
    }

    @Test func neverRequestsABlockTwiceOutsideEndgame() {
        var fixture = PickerFixture(availability: "22")
        let first = fixture.request(5, peer: 1)
        #expect(first.count == 5)
        let second = fixture.request(5, peer: 2)
        #expect(Set(first).isDisjoint(with: second))
        #expect(second.count == 3)
        #expect(fixture.pick(5, peer: 3).isEmpty == false, "endgame now: every block is requested")
        #expect(fixture.picker.isEndgame)
    }

    // MARK: - Fast peers

    @Test func aFastPeerGetsWholePiecesToItself() {
        var fixture = PickerFixture(availability: "22222", partial: "1    ")
        // A fast peer prefers a fresh piece over the partial one, and reserves it.
        let fast = fixture.request(2, peer: 1, fast: true)
        #expect(fast.pieces.count == 1)
        let reserved = fast[0].piece
        #expect(reserved != 0)
        #expect(fixture.picker.reservation(of: reserved) == 1)
        // A slow peer finishes the partial piece and starts others, but leaves the reserved piece alone.
        let slow = fixture.request(12, peer: 2)
        #expect(slow.pieces.first == 0)
        #expect(!slow.pieces.contains(reserved))
        // The fast peer continues its own piece first.
        let continued = fixture.pick(2, peer: 1, fast: true)
        #expect(continued == [block(fixture.picker, reserved, 2), block(fixture.picker, reserved, 3)])
        // With nothing else left, the slow peer may help with the reserved piece.
        let rest = fixture.request(20, peer: 2)
        #expect(rest.pieces.contains(reserved))
    }

    @Test func aReservationEndsWhenTheFastPeerDropsItsRequests() {
        var fixture = PickerFixture(availability: "22")
        let fast = fixture.request(2, peer: 1, fast: true)
        let piece = fast[0].piece
        #expect(fixture.picker.reservation(of: piece) == 1)
        fixture.picker.requestFailed(fast[0], peer: 1)
        #expect(fixture.picker.reservation(of: piece) == 1, "still one request in the piece")
        fixture.picker.requestFailed(fast[1], peer: 1)
        #expect(fixture.picker.reservation(of: piece) == nil)
        #expect(fixture.picker.downloadingPieces.isEmpty)

        fixture.request(2, peer: 1, fast: true)
        _ = fixture.picker.peerChoked(1)
        #expect(fixture.picker.downloadingPieces.isEmpty)
    }

    @Test func isFastWhenAPieceTakesUnderTwentySeconds() {
        let fixture = PickerFixture(availability: "1", blocksPerPiece: 16)  // 256 KiB pieces
        #expect(fixture.picker.isFast(downloadRate: 14_000))
        #expect(!fixture.picker.isFast(downloadRate: 12_000))
    }

    // MARK: - Endgame

    @Test func endgameDuplicatesOnlyWhenEveryNeededBlockIsRequested() {
        var fixture = PickerFixture(availability: "222", blocksPerPiece: 2)
        fixture.request(4, peer: 1)
        #expect(!fixture.picker.isEndgame)
        #expect(fixture.pick(10, peer: 2).count == 2, "the last open blocks, no duplicates")
        fixture.request(10, peer: 2)
        #expect(fixture.picker.isEndgame)
        // Peer 1 gets duplicates of peer 2's blocks only; peer 3 of anyone's, fewest requesters first.
        let duplicates = fixture.request(10, peer: 1)
        #expect(duplicates.count == 2 && duplicates.allSatisfy { $0.piece == 2 })
        let third = fixture.request(4, peer: 3)
        #expect(third.count == 4 && third.allSatisfy { $0.piece != 2 }, "blocks with one requester first")
        // When one arrives, the others are cancelled.
        let arrival = fixture.picker.blockReceived(duplicates[0], from: 2)
        #expect(arrival == BlockArrival(isNew: true, cancels: [1], completesPiece: false))
        #expect(fixture.picker.status(of: duplicates[0]) == .received(from: 2))
        let late = fixture.picker.blockReceived(duplicates[0], from: 1)
        #expect(late == BlockArrival(isNew: false, cancels: [], completesPiece: false))
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func endgameIsStrict() {
        // Piece 1 is open but only peer 2 has it: peer 1 gets no duplicates.
        var fixture = PickerFixture(availability: "21", blocksPerPiece: 2)
        fixture.request(2, peer: 1, peerHas: bits("10"))
        #expect(!fixture.picker.isEndgame)
        #expect(fixture.pick(5, peer: 3, peerHas: bits("10")).isEmpty)
        fixture.request(2, peer: 2, peerHas: bits("11"))
        #expect(fixture.picker.isEndgame)
        #expect(fixture.pick(5, peer: 3, peerHas: bits("10")).count == 2)
        #expect(fixture.pick(5, peer: 1, peerHas: bits("10")).isEmpty, "its own requests are not duplicated")
    }

    @Test func endgameCanBeTurnedOff() {
        var fixture = PickerFixture(availability: "2", configuration: .init(randomFirstPieces: 0, endgame: false))
        fixture.request(4, peer: 1)
        #expect(fixture.picker.isEndgame)
        #expect(fixture.pick(4, peer: 2).isEmpty)
    }

    // MARK: - Sequential

    @Test func sequentialPicksLowestIndexFirst() {
        var fixture = PickerFixture(availability: "91111119", configuration: .init(randomFirstPieces: 0, sequential: true))
        #expect(fixture.request(8).pieces == [0, 1])
        #expect(fixture.pick(8, peer: 51).pieces == [2, 3])
        fixture.picker.pieceVerified(4)
        #expect(fixture.pick(16, peer: 51).pieces == [2, 3, 5, 6])
    }

    @Test func sequentialStillPutsHighPriorityFirst() {
        var fixture = PickerFixture(availability: "11111", configuration: .init(randomFirstPieces: 0, sequential: true))
        fixture.picker.setPriority(.high, of: 3)
        #expect(fixture.pick(8).pieces == [3, 0])
        fixture.picker.setPriority(.skip, of: 0)
        fixture.picker.setPriority(.normal, of: 3)
        #expect(fixture.pick(8).pieces == [1, 2])
        fixture.picker.setPriority(.normal, of: 0)
        #expect(fixture.pick(4).pieces == [0], "the cursor moves back")
    }

    // MARK: - Events

    @Test func aFailedRequestReopensItsBlock() {
        var fixture = PickerFixture(availability: "1")
        let blocks = fixture.request(4, peer: 1)
        #expect(fixture.pick(4, peer: 2).isEmpty == false, "endgame")
        let failed = fixture.picker.requestFailed(blocks[1], peer: 1)
        let failedAgain = fixture.picker.requestFailed(blocks[1], peer: 1)
        #expect(failed && !failedAgain)
        #expect(fixture.picker.status(of: blocks[1]) == .open)
        #expect(fixture.pick(4, peer: 2) == [blocks[1]])
        #expect(!fixture.picker.isEndgame)
    }

    @Test func aChokeReleasesEveryRequestOfThePeer() {
        var fixture = PickerFixture(availability: "22", blocksPerPiece: 2)
        let first = fixture.request(3, peer: 1)
        let second = fixture.request(1, peer: 2)
        #expect(fixture.picker.peerChoked(1) == first.sorted())
        #expect(fixture.picker.downloadingPieces == [second[0].piece])
        #expect(fixture.picker.status(of: second[0]) == .requested(by: [2]))
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func aDepartingPeerTakesItsPiecesAndRequests() {
        var fixture = PickerFixture(availability: "2211")
        #expect(fixture.picker.availability(of: 0) == 2)
        fixture.request(4, peer: 2, peerHas: fixture.fixtureBitfield(2))
        let released = fixture.picker.peerLeft(2, bitfield: fixture.fixtureBitfield(2))
        #expect(released.count == 4)
        #expect((0..<4).map { fixture.picker.availability(of: $0) } == [1, 1, 1, 1])
        #expect(fixture.picker.downloadingPieces.isEmpty)
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func seedsCountOnceForEveryPiece() {
        var fixture = PickerFixture(availability: "0000")
        fixture.picker.peerHasAll(1)
        fixture.picker.peerBitfield(bits("1111"), peer: 2)
        fixture.picker.peerHas(0, peer: 2)  // ignored: already a seed
        fixture.picker.peerBitfield(bits("1100"), peer: 3)
        #expect((0..<4).map { fixture.picker.availability(of: $0) } == [3, 3, 2, 2])
        #expect(fixture.picker.seedCount == 2)
        fixture.picker.peerLeft(2, bitfield: bits("1111"))
        fixture.picker.peerLeft(3, bitfield: bits("1100"))
        #expect((0..<4).map { fixture.picker.availability(of: $0) } == [1, 1, 1, 1])
        fixture.picker.peerBitfield(bits("111"), peer: 4)  // the wrong length: ignored
        #expect(fixture.picker.availability(of: 0) == 1)
    }

    @Test func receivedBlocksCompleteAPiece() {
        var fixture = PickerFixture(availability: "11", blocksPerPiece: 2)
        let blocks = fixture.request(2, peer: 1)
        let first = fixture.picker.blockReceived(blocks[0], from: 1)
        #expect(first == BlockArrival(isNew: true, cancels: [], completesPiece: false))
        // Unrequested data for an open block is still welcome.
        let other = block(fixture.picker, 1 - blocks[0].piece, 0)
        #expect(fixture.picker.blockReceived(other, from: 9).isNew)
        #expect(fixture.picker.blockReceived(blocks[1], from: 1).completesPiece)
        #expect(fixture.picker.blockReceived(Block(piece: 0, offset: 1, length: 16384), from: 1) == BlockArrival.ignored)
        fixture.picker.pieceVerified(blocks[0].piece)
        #expect(fixture.picker.status(of: blocks[0]) == .have)
        #expect(fixture.picker.blockReceived(blocks[0], from: 1) == BlockArrival.ignored)
        #expect(fixture.picker.remainingCount == 1)
        #expect(fixture.picker.have.setCount == 1)
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func aFailedPieceReopensAndNamesItsSenders() {
        var fixture = PickerFixture(availability: "1111", have: "**  ")
        let blocks = fixture.picker.geometry.blocks(ofPiece: 2)
        for (index, block) in blocks.enumerated() {
            fixture.picker.blockRequested(block, by: PeerKey(index % 2 + 1))
            _ = fixture.picker.blockReceived(block, from: PeerKey(index % 2 + 1))
        }
        #expect(fixture.picker.pieceFailed(2) == [1, 2])
        #expect(blocks.allSatisfy { fixture.picker.status(of: $0) == .open })
        #expect(fixture.picker.downloadingPieces.isEmpty)
        #expect(fixture.picker.pieceFailed(2).isEmpty)
        #expect(fixture.pick(16).pieces.sorted() == [2, 3])
    }

    @Test func aFailedPieceKeepsRequestsInFlight() {
        var fixture = PickerFixture(availability: "1")
        let blocks = fixture.request(2, peer: 1)
        _ = fixture.picker.blockReceived(blocks[0], from: 1)
        #expect(fixture.picker.pieceFailed(0) == [1])
        #expect(fixture.picker.status(of: blocks[1]) == .requested(by: [1]))
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func priorityChangesMoveRemainingCount() {
        var fixture = PickerFixture(availability: "1111", have: "*   ")
        #expect(fixture.picker.remainingCount == 3)
        fixture.picker.setPriority(.skip, of: 1)
        fixture.picker.setPriority(.skip, of: 0)
        #expect(fixture.picker.remainingCount == 2)
        fixture.picker.setPriorities([.normal, .high, .skip, .skip])
        #expect(fixture.picker.remainingCount == 1)
        #expect(fixture.pick(8).pieces == [1])
        fixture.picker.setPriorities([.normal])  // the wrong length: ignored
        #expect(fixture.picker.priority(of: 1) == .high)
        #expect(fixture.picker.violations().isEmpty)
    }

    @Test func aSkippedPartialPieceIsNotContinued() {
        var fixture = PickerFixture(availability: "11", priority: "01", partial: "1 ")
        #expect(fixture.pick(8).pieces == [1])
        #expect(!fixture.picker.isEndgame)
    }

    @Test func wantsAnyTellsInterest() {
        var fixture = PickerFixture(availability: "1111111111", have: "*         ")
        #expect(fixture.picker.wantsAny(of: bits("0000000001")))
        #expect(!fixture.picker.wantsAny(of: bits("1000000000")))
        fixture.picker.setPriority(.skip, of: 9)
        #expect(!fixture.picker.wantsAny(of: bits("1000000001")))
        #expect(!fixture.picker.wantsAny(of: bits("1")))
    }

    @Test func theShortLastBlockIsRequestedWithItsLength() throws {
        let geometry = try #require(PieceGeometry(pieceCount: 2, pieceLength: 32768, totalLength: 32768 + 100))
        var picker = PiecePicker(geometry: geometry)
        picker.peerHasAll(1)
        picker.pieceVerified(0)
        var random = SeededGenerator(seed: 1)
        let blocks = picker.pick(for: 1, peerHas: Bitfield(count: 2, allSet: true), count: 5, random: &random)
        #expect(blocks == [Block(piece: 1, offset: 0, length: 100)])
    }

    @Test func oddInputIsIgnored() {
        var fixture = PickerFixture(availability: "11")
        fixture.picker.peerHas(5, peer: 1)
        fixture.picker.peerHas(-1, peer: 1)
        fixture.picker.pieceVerified(9)
        fixture.picker.setPriority(.high, of: 9)
        #expect(fixture.picker.pieceFailed(-3).isEmpty)
        let requested = fixture.picker.blockRequested(Block(piece: 9, offset: 0, length: 16384), by: 1)
        let failed = fixture.picker.requestFailed(Block(piece: 0, offset: 0, length: 16384), peer: 1)
        #expect(!requested && !failed)
        #expect(fixture.picker.status(of: Block(piece: 0, offset: 0, length: 3)) == nil)
        #expect(fixture.picker.availability(of: 7) == 0)
        #expect(fixture.pick(0).isEmpty)
        #expect(fixture.pick(4, peerHas: bits("111")).isEmpty)
        #expect(fixture.picker.violations().isEmpty)
    }
}
