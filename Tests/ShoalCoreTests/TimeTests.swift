import Testing

@testable import ShoalCore

@Suite("Instant and Interval")
struct TimeTests {
    @Test func arithmetic() {
        let start = Instant.seconds(10)
        #expect(start + .milliseconds(1500) == Instant(nanoseconds: 11_500_000_000))
        #expect((start + .seconds(3)) - start == .seconds(3))
        #expect(start - .seconds(20) < .zero)
        #expect(Interval.seconds(1.25).nanoseconds == 1_250_000_000)
        #expect(Interval.seconds(2).seconds == 2)
        #expect(Interval.seconds(2) * 3 == .seconds(6))
        #expect(Interval.seconds(2) - .seconds(3) == .milliseconds(-1000))
    }

    @Test func saturatesInsteadOfTrapping() {
        let late = Instant(nanoseconds: .max - 5)
        #expect((late + .seconds(1)).nanoseconds == .max)
        #expect((Instant(nanoseconds: .min) - late).nanoseconds == .min)
        #expect(Interval.seconds(Int.max).nanoseconds == .max)
        #expect(Interval.seconds(Double.infinity).nanoseconds == .max)
        #expect(Interval.seconds(-Double.infinity).nanoseconds == .min)
        #expect(Interval.seconds(Double.nan) == .zero)
        #expect((Interval.seconds(-9_000_000_000) * 3).nanoseconds == .min)
    }
}
