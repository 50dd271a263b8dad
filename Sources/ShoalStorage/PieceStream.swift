import Crypto

/// SHA-1 of consecutive pieces over a stream of bytes handed in arbitrary chunks: the chunks may end
/// anywhere, inside a piece or across several (a piece that spans files is fed one file's bytes at a time).
///
/// The stream covers `byteCount` bytes starting at a piece boundary; every piece is `pieceLength` bytes
/// except the last, which may be short (BEP 3, "pieces").
struct PieceStream {
    private let pieceLength: Int
    /// Bytes not yet fed, including those of the current piece.
    private var remaining: Int64
    /// Bytes the current piece still needs.
    private var remainingInPiece: Int
    private var hasher = Insecure.SHA1()
    /// The digests of the finished pieces, 20 bytes each, in order.
    private(set) var digests: [UInt8]

    init(pieceLength: Int, byteCount: Int64) {
        self.pieceLength = pieceLength
        self.remaining = byteCount
        self.remainingInPiece = Int(min(Int64(pieceLength), byteCount))
        let pieceCount = Int((byteCount + Int64(pieceLength) - 1) / Int64(pieceLength))
        self.digests = []
        self.digests.reserveCapacity(pieceCount * 20)
    }

    /// True once every byte has been fed and every digest made.
    var isComplete: Bool { remaining == 0 }

    /// Feeds the next bytes of the stream. Bytes beyond the stream's end are ignored.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty && remaining > 0 {
            let count = min(rest.count, remainingInPiece)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: rest.prefix(count)))
            if count == remainingInPiece {
                digests.append(contentsOf: hasher.finalize())
                hasher = Insecure.SHA1()
            }
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(count))
            remaining -= Int64(count)
            remainingInPiece -= count
            if remainingInPiece == 0 {
                remainingInPiece = Int(min(Int64(pieceLength), remaining))
            }
        }
    }
}
