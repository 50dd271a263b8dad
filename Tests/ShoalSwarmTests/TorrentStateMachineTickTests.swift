import ShoalCore
import Testing

@testable import ShoalSwarm

/// When a torrent needs the time (``TorrentStateMachine/nextTickDeadline(now:)``), which lets the simulator
/// tick a peer only then; and free upload slots taken at once when a peer becomes interested.
@Suite("Torrent state machine: ticks and free slots")
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
            #expect(machine.nextTickDeadline(now: swarm.now) == swarm.now, "the first rechoke is due")
            _ = machine.tick(now: swarm.now)
            let deadline = try #require(machine.nextTickDeadline(now: swarm.now))
            // The rechoke is at most 10 s away; wire timers (keep-alive 90 s, snub 60 s) are later.
            #expect(deadline > swarm.now)
            #expect(deadline <= swarm.now + .seconds(10))
            let early = deadline - .milliseconds(1)
            #expect(machine.tick(now: early).isEmpty)
            #expect(machine.nextTickDeadline(now: early) == deadline)
        }
    }

    @Test func theRechokeComesAtItsDeadline() throws {
        let (swarm, _, leecher) = try busySwarm()
        var machine = swarm.node(leecher).machine
        _ = machine.tick(now: swarm.now)
        let deadline = try #require(machine.nextTickDeadline(now: swarm.now))
        #expect(deadline == swarm.now + .seconds(10))
        _ = machine.tick(now: deadline)
        let next = try #require(machine.nextTickDeadline(now: deadline))
        #expect(next == deadline + .seconds(10), "the next rechoke")
    }

    @Test func aLoneTorrentHasNoDeadline() {
        let machine = TorrentStateMachine(
            configuration: .init(
                infoHash: Self.content.infoHash, peerID: PeerID(bytes: [UInt8](repeating: 7, count: 20))!,
                geometry: Self.content.geometry, pieceHashes: Self.content.pieceHashes),
            have: Bitfield(count: Self.content.geometry.pieceCount))
        #expect(machine.nextTickDeadline(now: .seconds(5)) == nil)
    }

    @Test func aDownloadLimitWantsEveryTick() throws {
        var swarm = MemorySwarm(content: Self.content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false) { $0.downloadRateLimit = 100_000 }
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).verified.count >= 1 })
        #expect(swarm.node(leecher).machine.nextTickDeadline(now: swarm.now) == swarm.now)
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
}
