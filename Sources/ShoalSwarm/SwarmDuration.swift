/// A length of time in nanoseconds, as the swarm algorithms measure it. The NIO runtime converts from
/// `TimeAmount` (also nanoseconds) and the simulator counts virtual nanoseconds, so both drive the same code.
/// Arithmetic saturates instead of trapping.
public struct SwarmDuration: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds; negative when the duration runs backwards.
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = SwarmDuration(nanoseconds: 0)

    public static func nanoseconds(_ value: Int64) -> SwarmDuration { SwarmDuration(nanoseconds: value) }
    public static func milliseconds(_ value: Int) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingMultiply(Int64(value), 1_000_000))
    }
    public static func seconds(_ value: Int) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingMultiply(Int64(value), 1_000_000_000))
    }
    public static func milliseconds(_ value: Int64) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingMultiply(value, 1_000_000))
    }
    public static func seconds(_ value: Int64) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingMultiply(value, 1_000_000_000))
    }
    public static func seconds(_ value: Double) -> SwarmDuration {
        SwarmDuration(nanoseconds: clampedNanoseconds(value * 1e9))
    }

    /// The duration in seconds.
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String { "\(seconds)s" }

    public static func < (lhs: SwarmDuration, rhs: SwarmDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    public static func + (lhs: SwarmDuration, rhs: SwarmDuration) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingAdd(lhs.nanoseconds, rhs.nanoseconds))
    }
    public static func - (lhs: SwarmDuration, rhs: SwarmDuration) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingSubtract(lhs.nanoseconds, rhs.nanoseconds))
    }
    public static func * (lhs: SwarmDuration, rhs: Int64) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingMultiply(lhs.nanoseconds, rhs))
    }
}

/// A Double rounded to whole nanoseconds, NaN as zero, out-of-range values at the limits.
func clampedNanoseconds(_ value: Double) -> Int64 {
    guard !value.isNaN else { return 0 }
    if value >= 9.2e18 { return .max }
    if value <= -9.2e18 { return .min }
    return Int64(value.rounded())
}

func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b > 0 ? .max : .min) : sum
}

func saturatingSubtract(_ a: Int64, _ b: Int64) -> Int64 {
    let (difference, overflow) = a.subtractingReportingOverflow(b)
    return overflow ? (b < 0 ? .max : .min) : difference
}

func saturatingMultiply(_ a: Int64, _ b: Int64) -> Int64 {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? ((a < 0) == (b < 0) ? .max : .min) : product
}
