/// A block: the unit of a `request`, `piece` and `cancel` message (BEP 3), 16 KiB except at the end of the
/// torrent. It carries the three wire fields, so a `piece` message maps onto it directly.
public struct Block: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The piece index.
    public var piece: Int
    /// The byte offset within the piece (`begin`).
    public var offset: Int
    /// The number of bytes.
    public var length: Int

    public init(piece: Int, offset: Int, length: Int) {
        self.piece = piece
        self.offset = offset
        self.length = length
    }

    /// The block's index within its piece.
    public var index: Int { offset / PieceGeometry.blockLength }

    public var description: String { "\(piece):\(index)" }

    public static func < (lhs: Block, rhs: Block) -> Bool {
        (lhs.piece, lhs.offset, lhs.length) < (rhs.piece, rhs.offset, rhs.length)
    }
}
