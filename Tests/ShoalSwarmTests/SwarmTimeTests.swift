import Testing

@testable import ShoalSwarm

@Suite("SwarmInstant and SwarmDuration")
struct SwarmTimeTests {
    @Test func arithmetic() {
        let start = SwarmInstant.seconds(10)
        #expect(start + .milliseconds(1500) == SwarmInstant(nanoseconds: 11_500_000_000))
        #expect((start + .seconds(3)) - start == .seconds(3))
        #expect(start - .seconds(20) < .zero)
        #expect(SwarmDuration.seconds(1.25).nanoseconds == 1_250_000_000)
        #expect(SwarmDuration.seconds(2).seconds == 2)
        #expect(SwarmDuration.seconds(2) * 3 == .seconds(6))
        #expect(SwarmDuration.seconds(2) - .seconds(3) == .milliseconds(-1000))
    }

    @Test func saturatesInsteadOfTrapping() {
        let late = SwarmInstant(nanoseconds: .max - 5)
        #expect((late + .seconds(1)).nanoseconds == .max)
        #expect((SwarmInstant(nanoseconds: .min) - late).nanoseconds == .min)
        #expect(SwarmDuration.seconds(Int.max).nanoseconds == .max)
        #expect(SwarmDuration.seconds(Double.infinity).nanoseconds == .max)
        #expect(SwarmDuration.seconds(-Double.infinity).nanoseconds == .min)
        #expect(SwarmDuration.seconds(Double.nan) == .zero)
        #expect((SwarmDuration.seconds(-9_000_000_000) * 3).nanoseconds == .min)
    }
}
