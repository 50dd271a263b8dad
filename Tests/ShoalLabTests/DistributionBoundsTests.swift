import ShoalLab
import Testing

@Suite struct DistributionBoundsTests {
    /// The lecture's figure: F/u = 1 hour, u_s = 10u. Client-server grows linearly (N/10 hours); P2P stays
    /// under one hour and approaches it as N grows.
    @Test func lectureExampleMatchesTheFigure() {
        let bounds = DistributionBounds.lecture(fileSize: 3600)
        #expect(bounds.peerUpload == 1)
        #expect(bounds.clientServer(peers: 1) == 360)
        #expect(bounds.clientServer(peers: 30) == 30 * 360)
        #expect(bounds.peerToPeer(peers: 1) == 360)
        #expect(bounds.peerToPeer(peers: 10) == 1800)
        #expect(abs(bounds.peerToPeer(peers: 30) - 30 * 3600 / 40.0) < 1e-9)
        #expect(bounds.peerToPeer(peers: 10_000) < 3600)
    }

    /// A slow downloader bounds both.
    @Test func slowDownloadBoundsBoth() {
        let bounds = DistributionBounds(fileSize: 1000, serverUpload: 100, peerUpload: 10, minDownload: 5)
        #expect(bounds.clientServer(peers: 1) == 200)
        #expect(bounds.peerToPeer(peers: 1) == 200)
        #expect(bounds.clientServer(peers: 100) == 1000)
    }

    /// The real-valued forms, used to draw the curves, agree with the whole-N ones and lie between them.
    @Test func realValuedBoundsAgreeAtWholeN() {
        let bounds = DistributionBounds.lecture(fileSize: 3600)
        for n in [0, 1, 7, 35, 10_000] {
            #expect(bounds.clientServer(peerCount: Double(n)) == bounds.clientServer(peers: n))
            #expect(bounds.peerToPeer(peerCount: Double(n)) == bounds.peerToPeer(peers: n))
        }
        #expect(bounds.peerToPeer(peerCount: 9.5) > bounds.peerToPeer(peers: 9))
        #expect(bounds.peerToPeer(peerCount: 9.5) < bounds.peerToPeer(peers: 10))
    }
}
