/// What the piece picker makes of a block that arrived (`PiecePicker.blockReceived(_:from:)`).
public struct BlockArrival: Hashable, Sendable {
    /// True when the data is new and should be written; false for a duplicate (endgame), a block of a piece
    /// we have, or a block that does not exist in this torrent.
    public var isNew: Bool
    /// Other peers that were asked for this block: send each a `cancel` (BEP 3, endgame). Ascending.
    public var cancels: [PeerKey]
    /// True when this block was the last missing one of its piece: hash the piece, then report
    /// `pieceVerified` or `pieceFailed`.
    public var completesPiece: Bool

    public init(isNew: Bool, cancels: [PeerKey], completesPiece: Bool) {
        self.isNew = isNew
        self.cancels = cancels
        self.completesPiece = completesPiece
    }

    static let ignored = BlockArrival(isNew: false, cancels: [], completesPiece: false)
}
