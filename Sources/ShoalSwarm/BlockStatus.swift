/// Where a block stands in the piece picker.
public enum BlockStatus: Hashable, Sendable {
    /// Nobody has been asked for it.
    case open
    /// Requested from these peers (more than one only in endgame), in ascending order.
    case requested(by: [PeerKey])
    /// Its data arrived from this peer; the piece is not verified yet.
    case received(from: PeerKey)
    /// Its piece is verified: we have it.
    case have
}
