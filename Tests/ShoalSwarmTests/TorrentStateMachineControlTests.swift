import ShoalCore
import Testing

@testable import ShoalSwarm

/// What a user controls in a running torrent — rate limits and which pieces are wanted — and what it
/// reports (statistics), on whole torrents in memory with virtual time.
@Suite("Torrent state machine: limits, priorities, statistics")
struct TorrentStateMachineControlTests {
    private func seconds(_ from: Instant, _ to: Instant) -> Double { (to - from).seconds }

    @Test func dialingOurselvesBansNothing() throws {
        let content = Content(totalLength: 100_000, pieceLength: 16384, seed: 21)
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        // A tracker gave the leecher its own address.
        swarm.introduce(leecher, to: leecher)
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).banned.isEmpty)
        #expect(swarm.node(leecher).hasContent(content))
    }

    @Test func anUploadLimitPacesTheSeed() throws {
        let content = Content(totalLength: 1_000_000, pieceLength: 16384, seed: 11)
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true) { $0.uploadRateLimit = 100_000 }
        let leecher = swarm.addNode(complete: false)
        let start = swarm.now
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content))
        // A burst of at most 64 KiB, then 100 000 B/s: about ten seconds, not much less nor much more.
        let elapsed = seconds(start, swarm.now)
        #expect(elapsed >= 9, "done after \(elapsed) s")
        #expect(elapsed <= 12.5, "done after \(elapsed) s")
    }

    @Test func aDownloadLimitPacesTheLeecher() throws {
        let content = Content(totalLength: 800_000, pieceLength: 32768, seed: 12)
        var swarm = MemorySwarm(content: content)
        let seeds = (0..<2).map { _ in swarm.addNode(complete: true) }
        let leecher = swarm.addNode(complete: false) { $0.downloadRateLimit = 80_000 }
        let start = swarm.now
        for seed in seeds { swarm.introduce(leecher, to: seed) }
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content))
        let elapsed = seconds(start, swarm.now)
        #expect(elapsed >= 9, "done after \(elapsed) s with two unlimited seeds")
        #expect(elapsed <= 12.5, "done after \(elapsed) s")
    }

    @Test func changingTheLimitTakesEffect() throws {
        let content = Content(totalLength: 600_000, pieceLength: 16384, seed: 13)
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true) { $0.uploadRateLimit = 20_000 }
        let leecher = swarm.addNode(complete: false)
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).verified.count >= 3 })
        let lifted = swarm.now
        swarm.setRateLimits(of: seed, upload: nil, download: nil)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(seconds(lifted, swarm.now) < 3, "the rest came at once without the limit")
    }

    @Test func skippedPiecesAreNotFetchedAndCompletionComesOnce() throws {
        let content = Content(totalLength: 500_000, pieceLength: 16384, seed: 14)
        let pieces = content.geometry.pieceCount
        let priorities = (0..<pieces).map { $0 % 3 == 0 ? PiecePriority.skip : ($0 == pieces - 1 ? .high : .normal) }
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false) { $0.piecePriorities = priorities }
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).machine.isFinished })
        let node = swarm.node(leecher)
        let wanted = Set((0..<pieces).filter { priorities[$0] != .skip })
        #expect(node.verified == wanted)
        #expect(!node.machine.isComplete)
        #expect(node.completions == 1)
        for piece in wanted {
            let range = piece * 16384..<min(content.bytes.count, (piece + 1) * 16384)
            let same = node.data[range] == content.bytes[range]
            #expect(same, "piece \(piece)")
        }
    }

    @Test func wantingMoreAfterFinishingResumesTheDownload() throws {
        let content = Content(totalLength: 300_000, pieceLength: 16384, seed: 15)
        let pieces = content.geometry.pieceCount
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false) {
            $0.piecePriorities = (0..<pieces).map { $0 < pieces / 2 ? .normal : .skip }
        }
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).machine.isFinished })
        swarm.setPiecePriorities(of: leecher, Array(repeating: .normal, count: pieces))
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content))
        #expect(swarm.node(leecher).completions == 2)
    }

    @Test func blocksAskedOfAPeerThatNeverAnswersGoToOthers() throws {
        let content = Content(totalLength: 300_000, pieceLength: 16384, seed: 18)
        var swarm = MemorySwarm(content: content)
        let mute = swarm.addNode(complete: true, mute: true)
        let honest = swarm.addNode(complete: true)
        // Without endgame, only the snub (no block for 60 s) can free what the mute peer was asked.
        let leecher = swarm.addNode(complete: false) { $0.picker.endgame = false }
        swarm.introduce(leecher, to: mute)
        try swarm.run(until: { swarm in
            swarm.node(leecher).machine.statistics(now: swarm.now).peers.contains { !$0.peerChoking }
        })
        swarm.introduce(leecher, to: honest)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content))
        #expect(swarm.node(mute).blocksServed == 0)
    }

    @Test func statisticsCountWhatMovedBetweenWhom() throws {
        let content = Content(totalLength: 400_000, pieceLength: 16384, seed: 16)
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true)
        let leechers = (0..<2).map { _ in swarm.addNode(complete: false) }
        for leecher in leechers { swarm.introduce(leecher, to: seed) }
        swarm.introduce(leechers[0], to: leechers[1])
        try swarm.run(until: { swarm in leechers.allSatisfy { swarm.node($0).machine.isComplete } })
        let stats = ([seed] + leechers).map { swarm.node($0).machine.statistics(now: swarm.now) }
        let ids = ([seed] + leechers).map { swarm.node($0).machine.configuration.peerID }
        // What each sent to each, seen by the sender, is what the receiver got from it.
        for sender in 0..<3 {
            for receiver in 0..<3 where receiver != sender {
                let sent = stats[sender].byPeerID[ids[receiver]]?.uploaded ?? 0
                let got = stats[receiver].byPeerID[ids[sender]]?.downloaded ?? 0
                #expect(sent == got, "\(sender) -> \(receiver)")
            }
        }
        for index in 1...2 {
            #expect(stats[index].downloaded >= Int64(content.bytes.count))
            #expect(stats[index].piecesVerified == content.geometry.pieceCount)
        }
        #expect(stats[0].uploaded + stats[1].uploaded + stats[2].uploaded == stats[1].downloaded + stats[2].downloaded)
        #expect(stats[0].downloaded == 0 && stats[0].wasted == 0)
        #expect(stats[1].peers.count == 2 && stats[0].peers.count == 2)
    }

    @Test func wastedBytesCountFailedPieces() throws {
        let content = Content(totalLength: 200_000, pieceLength: 16384, seed: 17)
        var swarm = MemorySwarm(content: content)
        let liar = swarm.addNode(complete: true, corrupt: true)
        let honest = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        swarm.introduce(leecher, to: liar)
        swarm.introduce(leecher, to: honest)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        let stats = swarm.node(leecher).machine.statistics(now: swarm.now)
        #expect(stats.wasted > 0)
        #expect(stats.wasted % 16384 == 0 || stats.wasted >= 16384)
    }
}

extension MemorySwarm {
    mutating func setRateLimits(of node: Int, upload: Int64?, download: Int64?) {
        let now = self.now
        let actions = mutateMachine(node) { $0.setRateLimits(upload: upload, download: download, now: now) }
        enqueue(actions, at: node)
    }

    mutating func setPiecePriorities(of node: Int, _ priorities: [PiecePriority]) {
        let now = self.now
        let actions = mutateMachine(node) { $0.setPiecePriorities(priorities, now: now) }
        enqueue(actions, at: node)
    }
}
