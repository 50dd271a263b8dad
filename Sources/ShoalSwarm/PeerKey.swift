/// How the swarm algorithms name a peer connection: an integer the caller chooses and never reuses while the
/// peer is known (a connection serial number, say). Not the BEP 3 peer id, which a peer picks for itself.
///
/// A concrete integer rather than a generic `Hashable` parameter: the picker and choker run per request batch
/// for hundreds of peers, and a generic type used from another module would run unspecialised, hashing
/// through witness tables; an integer also stores compactly in block states and orders deterministically.
public struct PeerKey: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: Int

    public init(_ rawValue: Int) { self.rawValue = rawValue }
    public init(integerLiteral value: Int) { self.rawValue = value }

    public var description: String { "peer#\(rawValue)" }

    public static func < (lhs: PeerKey, rhs: PeerKey) -> Bool { lhs.rawValue < rhs.rawValue }
}
