/// Identifies a lookup started on a ``DHTNode``.
public struct LookupID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "lookup \(rawValue)" }
    public static func < (lhs: LookupID, rhs: LookupID) -> Bool { lhs.rawValue < rhs.rawValue }
}
