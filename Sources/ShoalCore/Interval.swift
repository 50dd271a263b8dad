/// A length of time in nanoseconds, as every core measures it (the NIO runtime converts from its clock,
/// the simulator counts virtual nanoseconds, so both drive the same code). Arithmetic saturates instead of
/// trapping.
public struct Interval: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds; negative when the duration runs backwards.
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Interval(nanoseconds: 0)

    public static func nanoseconds(_ value: Int64) -> Interval { Interval(nanoseconds: value) }
    public static func milliseconds(_ value: Int) -> Interval {
        Interval(nanoseconds: Saturating.multiply(Int64(value), 1_000_000))
    }
    public static func seconds(_ value: Int) -> Interval {
        Interval(nanoseconds: Saturating.multiply(Int64(value), 1_000_000_000))
    }
    public static func milliseconds(_ value: Int64) -> Interval {
        Interval(nanoseconds: Saturating.multiply(value, 1_000_000))
    }
    public static func seconds(_ value: Int64) -> Interval {
        Interval(nanoseconds: Saturating.multiply(value, 1_000_000_000))
    }
    public static func seconds(_ value: Double) -> Interval {
        Interval(nanoseconds: Saturating.rounded(value * 1e9))
    }

    /// The duration in seconds.
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String { "\(seconds)s" }

    public static func < (lhs: Interval, rhs: Interval) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    public static func + (lhs: Interval, rhs: Interval) -> Interval {
        Interval(nanoseconds: Saturating.add(lhs.nanoseconds, rhs.nanoseconds))
    }
    public static func - (lhs: Interval, rhs: Interval) -> Interval {
        Interval(nanoseconds: Saturating.subtract(lhs.nanoseconds, rhs.nanoseconds))
    }
    public static func * (lhs: Interval, rhs: Int64) -> Interval {
        Interval(nanoseconds: Saturating.multiply(lhs.nanoseconds, rhs))
    }
}

/// Integer arithmetic that stops at the limits instead of trapping: times and byte counts come from the
/// network (a tracker's interval, a peer's claims), so no sum or product of them may crash the process.
public enum Saturating {
    /// A Double rounded to a whole number, NaN as zero, out-of-range values at the limits.
    public static func rounded(_ value: Double) -> Int64 {
        guard !value.isNaN else { return 0 }
        if value >= 9.2e18 { return .max }
        if value <= -9.2e18 { return .min }
        return Int64(value.rounded())
    }

    public static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    public static func subtract(_ a: Int64, _ b: Int64) -> Int64 {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b < 0 ? .max : .min) : difference
    }

    public static func multiply(_ a: Int64, _ b: Int64) -> Int64 {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? ((a < 0) == (b < 0) ? .max : .min) : product
    }
}
