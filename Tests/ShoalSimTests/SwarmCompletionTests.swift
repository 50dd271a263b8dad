import ShoalCore
import ShoalSim
import ShoalSwarm
import Testing

@Suite struct SwarmCompletionTests {
    /// One seed and N leechers that trade: everybody completes with every piece verified, and the last one
    /// within reach of the lecture's bound max(F/u_s, N·F/(u_s + N·u)).
    @Test(arguments: [1, 8, 30] as [Int])
    func seedAndLeechersComplete(leechers: Int) {
        let content = SimContent(length: 4 << 20, pieceLength: 64 << 10, seed: 1)
        let simulation = Simulation(content: content, configuration: .init(seed: 42))
        let serverUpload = 1_000_000.0
        let peerUpload = 200_000.0
        simulation.addPeer(.init(link: SimLink(upload: serverUpload, download: 10e6), isSeed: true))
        let peers = (0..<leechers).map { _ in
            simulation.addPeer(.init(link: SimLink(upload: peerUpload, download: 10e6, latency: .milliseconds(20))))
        }
        let stop = simulation.run(until: .seconds(3600), maxEvents: 5_000_000) { $0.finishedCount < leechers }
        #expect(stop == .condition)
        for peer in peers {
            let report = simulation.report(peer)
            #expect(report.piecesVerified == content.geometry.pieceCount, "\(peer)")
            #expect(simulation.machine(peer).isComplete, "\(peer)")
        }
        let size = Double(content.geometry.totalLength)
        let bound = max(size / serverUpload, Double(leechers) * size / (serverUpload + Double(leechers) * peerUpload))
        let last = peers.compactMap { simulation.report($0).finishedAt }.max()!
        print("N=\(leechers) last=\(last) bound=\(bound) events=\(simulation.eventsProcessed)")
        // A short transfer (20 s per copy at u) is dominated by start-up: the first rechoke comes after 10 s.
        // How close long transfers come to the bound is the lab's test (DistributionSimulationTests).
        #expect((last - .zero).seconds < 1.8 * bound)
    }
}
