import ShoalLab
import ShoalSim
import Testing

@Suite struct DistributionSimulationTests {
    /// The lecture's setting (F/u = 1 hour, u_s = 10u, d_min = u_s) with the real engine in the simulator:
    /// client-server comes within 2% of d_cs and peer-to-peer within 10% of d_P2P (observed: 1.02–1.07 for
    /// N up to 50 with the lab's seed).
    @Test(arguments: [3, 10, 20] as [Int])
    func lectureSettingComesCloseToTheBounds(peers: Int) {
        let bounds = DistributionBounds.lecture(fileSize: Double(16 << 20))
        let experiment = DistributionSimulation(bounds: bounds)
        let content = SimContent(length: 16 << 20, pieceLength: 64 << 10, seed: 5)
        let p2p = experiment.run(peers: peers, mode: .peerToPeer, seed: 5, content: content)
        let cs = experiment.run(peers: peers, mode: .clientServer, seed: 5, content: content)
        let p2pRatio = (p2p.time ?? .infinity) / bounds.peerToPeer(peers: peers)
        let csRatio = (cs.time ?? .infinity) / bounds.clientServer(peers: peers)
        #expect(p2p.finished == peers && cs.finished == peers)
        #expect(p2pRatio >= 1 && p2pRatio < 1.10, "P2P \(p2pRatio)")
        #expect(csRatio >= 1 && csRatio < 1.02, "client-server \(csRatio)")
        #expect(cs.seedUtilisation > 0.97)
    }
}
