import ShoalCore
import Testing

@testable import ShoalSwarm

/// When a torrent needs the time (``TorrentStateMachine/nextTickDeadline(now:)``), which lets the simulator
/// tick a peer only then; free upload slots taken at once when a peer becomes interested; and blocks read for
/// a peer only as fast as they leave (`notifySent`, `blockSent`).
@Suite("Torrent state machine: ticks, free slots, upload pacing")
struct TorrentStateMachineTickTests {
    private static let content = Content(totalLength: 640_000, pieceLength: 32768, seed: 21)

    /// A seed and a leecher that has a few pieces and is still downloading.
    private func busySwarm() throws -> (MemorySwarm, seed: Int, leecher: Int) {
        var swarm = MemorySwarm(content: Self.content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).verified.count >= 3 })
        return (swarm, seed, leecher)
    }

    @Test func aTickBeforeTheDeadlineDoesNothing() throws {
        let (swarm, seed, leecher) = try busySwarm()
        for node in [seed, leecher] {
            var machine = swarm.node(node).machine
            let first = machine.nextTickDeadline(now: swarm.now)
            #expect(first == swarm.now, "the first rechoke is due")
            _ = machine.tick(now: swarm.now)
            let due = machine.nextTickDeadline(now: swarm.now)
            let deadline = try #require(due)
            // The rechoke is at most 10 s away; wire timers (keep-alive 90 s, snub 60 s) are later.
            #expect(deadline > swarm.now)
            #expect(deadline <= swarm.now + .seconds(10))
            let early = deadline - .milliseconds(1)
            let actions = machine.tick(now: early)
            #expect(actions.isEmpty)
            let again = machine.nextTickDeadline(now: early)
            #expect(again == deadline)
        }
    }

    @Test func theRechokeComesAtItsDeadline() throws {
        let (swarm, _, leecher) = try busySwarm()
        var machine = swarm.node(leecher).machine
        _ = machine.tick(now: swarm.now)
        let due = machine.nextTickDeadline(now: swarm.now)
        let deadline = try #require(due)
        #expect(deadline == swarm.now + .seconds(10))
        _ = machine.tick(now: deadline)
        let following = machine.nextTickDeadline(now: deadline)
        let next = try #require(following)
        #expect(next == deadline + .seconds(10), "the next rechoke")
    }

    @Test func aLoneTorrentHasNoDeadline() {
        var machine = TorrentStateMachine(
            configuration: .init(
                infoHash: Self.content.infoHash, peerID: PeerID(bytes: [UInt8](repeating: 7, count: 20))!,
                geometry: Self.content.geometry, pieceHashes: Self.content.pieceHashes),
            have: Bitfield(count: Self.content.geometry.pieceCount))
        let deadline = machine.nextTickDeadline(now: .seconds(5))
        #expect(deadline == nil)
    }

    @Test func aDownloadLimitWantsEveryTick() throws {
        var swarm = MemorySwarm(content: Self.content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false) { $0.downloadRateLimit = 100_000 }
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).verified.count >= 1 })
        var machine = swarm.node(leecher).machine
        let deadline = machine.nextTickDeadline(now: swarm.now)
        #expect(deadline == swarm.now)
    }

    @Test func aNewlyInterestedPeerTakesAFreeSlotWithoutWaitingForTheRechoke() throws {
        var swarm = MemorySwarm(content: Self.content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        let start = swarm.now
        // Time only moves when nothing is pending: the first pieces come before any tick.
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).verified.count >= 1 })
        #expect(swarm.now == start)
    }

    @Test func aPeerWhoseBlocksAreNotYetOutGetsNoMoreReadAhead() throws {
        var swarm = MemorySwarm(content: Self.content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        swarm.setHoldsSends(seed, true)
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(seed).unconfirmed.count == 1 }, maxSteps: 10_000)
        // Nothing went out yet (as on a slow link): the leecher's other requests wait unread.
        try swarm.run(until: { $0.now >= .seconds(5) }, maxSteps: 10_000)
        #expect(swarm.node(seed).reads.count == 1)
        #expect(swarm.node(leecher).verified.isEmpty, "one block of a 32 KiB piece came")
        // Once it is out, the next one is read; with every block confirmed the leecher completes.
        swarm.confirmSends(of: seed)
        try swarm.run(until: { $0.node(seed).reads.count == 2 }, maxSteps: 10_000)
        swarm.setHoldsSends(seed, false)
        swarm.confirmSends(of: seed)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(Self.content))
        let blocks = (0..<Self.content.geometry.pieceCount).reduce(0) { $0 + Self.content.geometry.blockCount(ofPiece: $1) }
        #expect(swarm.node(seed).reads.count == blocks, "every block read once")
    }
}
