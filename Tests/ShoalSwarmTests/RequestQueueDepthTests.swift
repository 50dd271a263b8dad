import Testing

@testable import ShoalSwarm

@Suite("RequestQueueDepth")
struct RequestQueueDepthTests {
    @Test func coversThreeSecondsOfData() {
        let depth = RequestQueueDepth()
        #expect(depth.depth(rate: 1_048_576) == 192)  // 3 MiB in 16 KiB blocks
        #expect(depth.depth(rate: 100_000) == 19)
        #expect(depth.depth(rate: 16384) == 3)
    }

    @Test func staysWithinTwoAndFiveHundred() {
        let depth = RequestQueueDepth()
        #expect(depth.depth(rate: 0) == 2)
        #expect(depth.depth(rate: 1) == 2)
        #expect(depth.depth(rate: -5) == 2)
        #expect(depth.depth(rate: .nan) == 2)
        #expect(depth.depth(rate: 104_857_600) == 500)
        #expect(depth.depth(rate: .infinity) == 500)
    }

    @Test func neverExceedsThePeersLimit() {
        let depth = RequestQueueDepth()
        #expect(depth.depth(rate: 104_857_600, peerLimit: 250) == 250)
        #expect(depth.depth(rate: 1_048_576, peerLimit: 250) == 192)
        #expect(depth.depth(rate: 0, peerLimit: 1) == 1, "even below the minimum")
        #expect(depth.depth(rate: 1_048_576, peerLimit: 0) == 192, "nonsense is ignored")
        #expect(depth.depth(rate: 1_048_576, peerLimit: -3) == 192)
    }

    @Test func isConfigurable() {
        let depth = RequestQueueDepth(queueTime: .seconds(1), minimum: 4, maximum: 50)
        #expect(depth.depth(rate: 0) == 4)
        #expect(depth.depth(rate: 1_048_576) == 50)
        #expect(depth.depth(rate: 160 * 1024) == 10)
    }
}
