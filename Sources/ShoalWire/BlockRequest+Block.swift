import ShoalCore

extension BlockRequest {
    /// The wire form of a block the picker chose; nil when a field does not fit the wire's 32 bits
    /// (never for a block of a torrent that `PieceGeometry` accepts).
    public init?(_ block: Block) {
        guard let piece = UInt32(exactly: block.piece), let offset = UInt32(exactly: block.offset),
            let length = UInt32(exactly: block.length)
        else { return nil }
        self.init(piece: piece, offset: offset, length: length)
    }

    /// The block as the picker and the storage count it. Whether it exists in a torrent is
    /// ``PieceGeometry/blockIndex(of:)``'s to say.
    public var block: Block {
        Block(piece: Int(piece), offset: Int(offset), length: Int(length))
    }
}
