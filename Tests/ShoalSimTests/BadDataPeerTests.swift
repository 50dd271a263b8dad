import ShoalCore
@testable import ShoalSim
import ShoalSwarm
import Testing

/// A peer that serves corrupted blocks: pieces fail their SHA-1 check (BEP 3, "pieces"), the peer that
/// contributed to them is banned, and the honest swarm completes without it.
@Suite struct BadDataPeerTests {
    /// An honest seed, a seed whose every uploaded block is altered, and 10 leechers. Every leecher that
    /// took blocks from the bad seed bans its address (10.0.0.2:6881), no honest peer is banned by anyone,
    /// and every leecher completes with every piece verified; the bad data cost each of them at most four
    /// pieces of wasted bytes (observed: two or three).
    @Test(arguments: [5, 77] as [UInt64])
    func corruptingPeerIsBannedAndHonestPeersComplete(seed: UInt64) {
        let content = SimContent(length: 2 << 20, pieceLength: 32 << 10, seed: seed)
        let simulation = Simulation(content: content, configuration: .init(seed: seed))
        simulation.addPeer(.init(link: SimLink(upload: 200_000, download: 10e6), isSeed: true))
        let bad = simulation.addPeer(
            .init(link: SimLink(upload: 200_000, download: 10e6), isSeed: true, corruptsUploads: true))
        let badAddress = Simulation.address(ofNode: bad.index)
        #expect(badAddress == PeerAddress(host: .ipv4(0x0A00_0002), port: 6881))
        let badID = simulation.machine(bad).configuration.peerID
        let leechers = (0..<10).map { _ in
            simulation.addPeer(.init(link: SimLink(upload: 100_000, download: 2e6, latency: .milliseconds(20))))
        }
        let stop = simulation.run(until: .seconds(600), maxEvents: 3_000_000) { simulation in
            !leechers.allSatisfy { simulation.report($0).finishedAt != nil }
        }
        #expect(stop == .condition)

        var fromBad: [Int64] = []
        var banners = 0
        for peer in leechers {
            let report = simulation.report(peer)
            let statistics = simulation.machine(peer).statistics(now: simulation.now)
            let received = statistics.byPeerID[badID]?.downloaded ?? 0
            fromBad.append(received)
            #expect(report.piecesVerified == content.geometry.pieceCount, "\(peer)")
            #expect(simulation.machine(peer).isComplete, "\(peer)")
            let banned = report.bans.contains(badAddress)
            if banned { banners += 1 }
            if received > 0 {
                #expect(banned, "\(peer) took \(received) bytes from the bad peer and did not ban it")
                // maxBadPieces (2) strikes, plus at most a piece or two already under way.
                #expect(statistics.wasted > 0 && statistics.wasted <= 4 * 32 << 10, "\(peer): \(statistics.wasted)")
            }
            // Nobody else is banned: the honest seed and leechers are never blamed enough.
            #expect(report.bans.allSatisfy { $0.host == badAddress.host }, "\(peer) banned \(report.bans)")
        }
        // The bad peer did serve data, so the bans are the engine's answer to it.
        #expect(fromBad.contains { $0 > 0 })
        #expect(banners >= 1)
        print(
            "bad-data seed=\(seed): \(banners) of \(leechers.count) banned it; bytes taken from it \(fromBad); "
                + "events=\(simulation.eventsProcessed)")
    }
}
