import ShoalCore
import Testing

@testable import ShoalSwarm

@Suite("RateEstimator")
struct RateEstimatorTests {
    let start = Instant.seconds(50)

    @Test func measuresASteadyRate() {
        var estimator = RateEstimator(window: .seconds(10), slots: 10, now: start)
        // 16 KiB every 100 ms: 163,840 bytes per second.
        for tick in 1...300 { estimator.record(16384, now: start + .milliseconds(100 * tick)) }
        for offset in [0, 30, 70] {
            let rate = estimator.rate(now: start + .seconds(30) + .milliseconds(offset))
            #expect(abs(rate - 163_840) / 163_840 < 0.03, "\(rate)")
        }
        #expect(estimator.totalBytes == 300 * 16384)
    }

    @Test func startsFromTheTimeMeasured() {
        var estimator = RateEstimator(window: .seconds(10), slots: 10, now: start)
        estimator.record(30_000, now: start + .seconds(1))
        estimator.record(30_000, now: start + .seconds(2))
        #expect(abs(estimator.rate(now: start + .seconds(3)) - 20_000) < 1)
        #expect(estimator.rate(now: start) == 0)
    }

    @Test func coversExactlyTheWindow() {
        var estimator = RateEstimator(window: .seconds(4), slots: 4, now: start)
        // One burst in the middle of a slot, then the window slides past it.
        estimator.record(40_000, now: start + .milliseconds(10_500))
        #expect(estimator.rate(now: start + .seconds(12)) == 10_000)
        #expect(estimator.rate(now: start + .seconds(14)) == 10_000)
        #expect(estimator.rate(now: start + .milliseconds(14_250)) == 7_500, "a quarter of its slot has left")
        #expect(estimator.rate(now: start + .milliseconds(14_750)) == 2_500)
        #expect(estimator.rate(now: start + .seconds(15)) == 0)
    }

    @Test func forgetsWhatIsOutsideTheWindow() {
        var estimator = RateEstimator(window: .seconds(5), slots: 5, now: start)
        estimator.record(100_000, now: start + .seconds(1))
        #expect(estimator.rate(now: start + .seconds(3)) > 0)
        #expect(estimator.rate(now: start + .seconds(7)) == 0)
        #expect(estimator.rate(now: start + .seconds(700)) == 0)
        estimator.record(50_000, now: start + .seconds(700))
        #expect(abs(estimator.rate(now: start + .seconds(701)) - 10_000) < 1)
        // Bytes dated before the window are dropped; those within it count.
        estimator.record(1_000_000, now: start + .seconds(600))
        estimator.record(5_000, now: start + .milliseconds(697_500))
        #expect(abs(estimator.rate(now: start + .seconds(701)) - 11_000) < 1)
    }

    @Test func aStopShowsAsADecline() {
        var estimator = RateEstimator(window: .seconds(10), slots: 10, now: start)
        for second in 1...20 { estimator.record(10_000, now: start + .seconds(second)) }
        let before = estimator.rate(now: start + .milliseconds(20_500))
        let during = estimator.rate(now: start + .seconds(25))
        #expect(abs(before - 10_000) < 1_000)
        #expect(during < before && during > 0)
        #expect(estimator.rate(now: start + .seconds(31)) == 0)
    }

    @Test func handlesInstantsBeforeTheOrigin() {
        let origin = Instant(nanoseconds: -5_000_000_000)
        var estimator = RateEstimator(window: .seconds(4), slots: 4, now: origin)
        for second in 1...8 { estimator.record(1000, now: origin + .seconds(second)) }
        #expect(abs(estimator.rate(now: origin + .milliseconds(8500)) - 1000) < 200)
        estimator.record(-5, now: origin)
        #expect(estimator.totalBytes == 8000)
    }
}
