import ShoalCore
import ShoalSim
import ShoalSwarm
import Testing

/// Peers that leave in the middle of a download and peers that arrive late: the swarm copes with both.
@Suite struct SwarmChurnTests {
    /// A seed and 20 leechers; five leechers leave at 4–16 s, before they have everything, and four new
    /// ones join at 12–32 s. Everybody who stays (the late ones too) completes with every piece verified;
    /// those who left are never reported finished after they left and gain no piece once gone.
    @Test(arguments: [7, 1234, 99] as [UInt64])
    func leaversAndLateJoinersDoNotStopTheSwarm(seed: UInt64) {
        let content = SimContent(length: 2 << 20, pieceLength: 32 << 10, seed: seed)
        let pieceCount = content.geometry.pieceCount
        let simulation = Simulation(content: content, configuration: .init(seed: seed))
        simulation.addPeer(.init(link: SimLink(upload: 500_000, download: 10e6), isSeed: true))
        let link = SimLink(upload: 100_000, download: 2e6, latency: .milliseconds(20))
        let first = (0..<20).map { _ in simulation.addPeer(.init(link: link)) }
        let leaveTimes: [Double] = [4, 7, 10, 13, 16]
        // The last ones added: the first ones meet the seed first and can be done by 13 s.
        let leavers = Array(first.suffix(leaveTimes.count))
        var piecesWhenLeaving: [SimPeerID: Int] = [:]
        for (peer, time) in zip(leavers, leaveTimes) {
            simulation.removePeer(peer, at: .seconds(time))
            // Just after the leave event at the same instant (events at one time run in order).
            simulation.schedule(at: .seconds(time)) { piecesWhenLeaving[peer] = $0.report(peer).piecesVerified }
        }
        let late = [12.0, 18, 25, 32].map { simulation.addPeer(.init(link: link), at: .seconds($0)) }
        let stayers = Array(first.dropLast(leaveTimes.count)) + late

        let stop = simulation.run(until: .seconds(600), maxEvents: 3_000_000) { simulation in
            !stayers.allSatisfy { simulation.report($0).finishedAt != nil }
        }
        #expect(stop == .condition)

        for peer in stayers {
            let report = simulation.report(peer)
            #expect(report.piecesVerified == pieceCount, "\(peer)")
            #expect(simulation.machine(peer).isComplete, "\(peer)")
            #expect(report.isOnline, "\(peer)")
        }
        for peer in late {
            let report = simulation.report(peer)
            #expect(report.joinedAt != nil && report.finishedAt! > report.joinedAt!, "\(peer)")
        }
        for peer in leavers {
            let report = simulation.report(peer)
            #expect(!report.isOnline, "\(peer)")
            #expect(report.leftAt != nil, "\(peer)")
            // They left mid-download, so the scenario is churn and not peers leaving when done.
            #expect((piecesWhenLeaving[peer] ?? pieceCount) < pieceCount, "\(peer)")
            #expect(report.finishedAt == nil || report.finishedAt! <= report.leftAt!, "\(peer)")
            #expect(report.piecesVerified == piecesWhenLeaving[peer], "\(peer)")
        }
        let finishes = stayers.map { simulation.report($0).finishedAt!.secondsSinceZero }
        print(
            "churn seed=\(seed) left with \(leavers.map { piecesWhenLeaving[$0] ?? -1 }) of \(pieceCount) pieces; "
                + "stayers finished \(finishes.map { ($0 * 10).rounded() / 10 }); events=\(simulation.eventsProcessed)")
    }
}
