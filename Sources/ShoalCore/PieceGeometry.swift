/// How a torrent's bytes divide into pieces and blocks: every piece is `pieceLength` bytes but the last, and
/// every block is 16 KiB but the last of each piece (BEP 3: requests of 16 KiB; the last piece may be short).
public struct PieceGeometry: Hashable, Sendable {
    /// The length of a block: 16 KiB, what every client requests and accepts.
    public static let blockLength = InfoDictionary.blockLength

    public let pieceCount: Int
    public let pieceLength: Int
    public let totalLength: Int64

    /// Nil unless `pieceCount` is exactly the number of `pieceLength` pieces that `totalLength` needs.
    public init?(pieceCount: Int, pieceLength: Int, totalLength: Int64) {
        guard pieceLength > 0, totalLength >= 0, pieceCount >= 0, pieceCount < Int(Int32.max) else { return nil }
        let needed = (totalLength + Int64(pieceLength) - 1) / Int64(pieceLength)
        guard needed == Int64(pieceCount) else { return nil }
        self.pieceCount = pieceCount
        self.pieceLength = pieceLength
        self.totalLength = totalLength
    }

    /// The geometry of `totalLength` bytes in pieces of `pieceLength` (which must be positive).
    public init(pieceLength: Int, totalLength: Int64) {
        precondition(pieceLength > 0 && totalLength >= 0, "piece length must be positive, total length not negative")
        self.pieceLength = pieceLength
        self.totalLength = totalLength
        self.pieceCount = Int((totalLength + Int64(pieceLength) - 1) / Int64(pieceLength))
    }

    /// The geometry of a torrent's piece space.
    public init?(info: InfoDictionary) {
        self.init(pieceCount: info.pieceCount, pieceLength: info.pieceLength, totalLength: info.totalLength)
    }

    /// The number of blocks in a full piece.
    public var blocksPerPiece: Int { (pieceLength + Self.blockLength - 1) / Self.blockLength }

    /// The bytes in `piece`: `pieceLength` except for the last piece; 0 for an index out of range.
    public func length(ofPiece piece: Int) -> Int {
        guard piece >= 0, piece < pieceCount else { return 0 }
        guard piece == pieceCount - 1 else { return pieceLength }
        return Int(totalLength - Int64(piece) * Int64(pieceLength))
    }

    /// The number of blocks in `piece`; 0 for an index out of range.
    public func blockCount(ofPiece piece: Int) -> Int {
        (length(ofPiece: piece) + Self.blockLength - 1) / Self.blockLength
    }

    /// Block `index` of `piece`, with its true length. The indices must be in range.
    public func block(piece: Int, index: Int) -> Block {
        let offset = index * Self.blockLength
        return Block(piece: piece, offset: offset, length: min(Self.blockLength, length(ofPiece: piece) - offset))
    }

    /// All blocks of `piece`, in order.
    public func blocks(ofPiece piece: Int) -> [Block] {
        (0..<blockCount(ofPiece: piece)).map { block(piece: piece, index: $0) }
    }

    /// The index of `block` within its piece, or nil when no such block exists in this torrent: a piece out
    /// of range, an offset off the 16 KiB grid, or a length other than the block's true length.
    public func blockIndex(of block: Block) -> Int? {
        guard block.piece >= 0, block.piece < pieceCount, block.offset >= 0,
            block.offset % Self.blockLength == 0
        else { return nil }
        let index = block.offset / Self.blockLength
        guard index < blockCount(ofPiece: block.piece),
            block.length == min(Self.blockLength, length(ofPiece: block.piece) - block.offset)
        else { return nil }
        return index
    }
}
