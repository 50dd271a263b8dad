/// A point in time for the swarm algorithms: nanoseconds since an origin the runtime chooses (the NIO runtime:
/// `NIODeadline.uptimeNanoseconds`; the simulator: its virtual zero). The algorithms only compare instants and
/// subtract them, so the origin never matters. Arithmetic saturates instead of trapping.
public struct SwarmInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The runtime's origin.
    public static let zero = SwarmInstant(nanoseconds: 0)

    /// An instant `seconds` after the origin (a convenience for tests and the simulator).
    public static func seconds(_ seconds: Double) -> SwarmInstant { .zero + .seconds(seconds) }

    public var description: String { "@\(Double(nanoseconds) / 1e9)s" }

    public static func < (lhs: SwarmInstant, rhs: SwarmInstant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    public static func + (lhs: SwarmInstant, rhs: SwarmDuration) -> SwarmInstant {
        SwarmInstant(nanoseconds: saturatingAdd(lhs.nanoseconds, rhs.nanoseconds))
    }
    public static func - (lhs: SwarmInstant, rhs: SwarmDuration) -> SwarmInstant {
        SwarmInstant(nanoseconds: saturatingSubtract(lhs.nanoseconds, rhs.nanoseconds))
    }
    /// The time from `rhs` to `lhs`.
    public static func - (lhs: SwarmInstant, rhs: SwarmInstant) -> SwarmDuration {
        SwarmDuration(nanoseconds: saturatingSubtract(lhs.nanoseconds, rhs.nanoseconds))
    }
}
