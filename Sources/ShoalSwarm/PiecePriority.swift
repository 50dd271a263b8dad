/// How much we want a piece. File priorities map onto pieces by the caller: a piece shared by two files takes
/// the higher of their priorities.
public enum PiecePriority: UInt8, Hashable, Comparable, Sendable, CaseIterable {
    /// Never download.
    case skip = 0
    /// Download, rarest first.
    case normal = 1
    /// Download before every normal piece.
    case high = 2

    public static func < (lhs: PiecePriority, rhs: PiecePriority) -> Bool { lhs.rawValue < rhs.rawValue }
}
