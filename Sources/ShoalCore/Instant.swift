/// A point in time for every core (wire, swarm, trackers, DHT): nanoseconds since an origin the runtime chooses
/// (the NIO runtime: the monotonic clock; the simulator: its virtual zero). Cores never read a clock; they are
/// handed instants. The algorithms only compare instants and
/// subtract them, so the origin never matters. Arithmetic saturates instead of trapping.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The runtime's origin.
    public static let zero = Instant(nanoseconds: 0)

    /// An instant `seconds` after the origin (a convenience for tests and the simulator).
    public static func seconds(_ seconds: Double) -> Instant { .zero + .seconds(seconds) }

    public var description: String { "@\(Double(nanoseconds) / 1e9)s" }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    public static func + (lhs: Instant, rhs: Interval) -> Instant {
        Instant(nanoseconds: Saturating.add(lhs.nanoseconds, rhs.nanoseconds))
    }
    public static func - (lhs: Instant, rhs: Interval) -> Instant {
        Instant(nanoseconds: Saturating.subtract(lhs.nanoseconds, rhs.nanoseconds))
    }
    /// The time from `rhs` to `lhs`.
    public static func - (lhs: Instant, rhs: Instant) -> Interval {
        Interval(nanoseconds: Saturating.subtract(lhs.nanoseconds, rhs.nanoseconds))
    }
}
