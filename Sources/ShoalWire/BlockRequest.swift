/// One block of a piece: the triple that `request`, `cancel` and `reject request` carry
/// (BEP 3 "request", BEP 6 "Reject Request"), and that names the block a `piece` message delivers.
///
/// Blocks are normally 16 KiB (BEP 3: "All current implementations use 2^14 (16 kiB), and close
/// connections which request an amount greater than that"); the last block of a piece may be shorter.
public struct BlockRequest: Hashable, Sendable, CustomStringConvertible {
    /// The zero-based piece index.
    public var piece: UInt32
    /// The zero-based byte offset of the block within its piece (`begin` in BEP 3).
    public var offset: UInt32
    /// The number of bytes in the block.
    public var length: UInt32

    public init(piece: UInt32, offset: UInt32, length: UInt32) {
        self.piece = piece
        self.offset = offset
        self.length = length
    }

    /// The standard block length, 16 KiB (BEP 3 "request").
    public static let standardLength: UInt32 = 16 << 10

    public var description: String { "piece \(piece) [\(offset)+\(length)]" }
}
