import Crypto
import NIOCore
import ShoalCore

/// One simulated peer's disk. It keeps only what differs from the torrent's content: a block written
/// with the right bytes is a flag, a block written with wrong bytes is kept, so that a piece's hash is
/// computed over exactly what a disk would hold. A swarm of thousands then needs memory only for the bad
/// data it was sent.
public struct SimStorage {
    /// How a piece's digest is made when the engine asks for it.
    public enum Hashing: Sendable, Hashable {
        /// SHA-1 over the piece's bytes as written, always.
        case full
        /// A piece whose every block was written with the right bytes has the right digest (looked up, not
        /// computed); SHA-1 runs only over pieces that hold bad data. Gives the same digests as `.full`.
        case shortcut
    }

    public let content: SimContent
    public var hashing: Hashing
    /// Serve altered bytes to peers (a peer that uploads bad data).
    public var corruptsReads = false
    /// Blocks written with bytes other than the content's, by piece.
    private var wrongBlocks: [Int: [Int: ByteBuffer]] = [:]
    /// SHA-1 computations run (for tests of the shortcut).
    public private(set) var hashesComputed = 0

    public init(content: SimContent, hashing: Hashing) {
        self.content = content
        self.hashing = hashing
    }

    /// Stores a block a peer sent.
    public mutating func write(_ block: Block, data: ByteBuffer) {
        if content.matches(data, block: block) {
            if wrongBlocks[block.piece] != nil {
                wrongBlocks[block.piece]![block.offset] = nil
                if wrongBlocks[block.piece]!.isEmpty { wrongBlocks[block.piece] = nil }
            }
        } else {
            wrongBlocks[block.piece, default: [:]][block.offset] = data
        }
    }

    /// The bytes to send for `block`.
    public func read(_ block: Block) -> ByteBuffer {
        let data = content.data(of: block)
        guard corruptsReads else { return data }
        var altered = data  // copied on write
        let first = altered.getInteger(at: altered.readerIndex, as: UInt8.self) ?? 0
        altered.setInteger(first ^ 0xFF, at: altered.readerIndex)
        return altered
    }

    /// The SHA-1 of a piece as stored; the piece's bad blocks are forgotten (the engine rewrites a piece
    /// that fails).
    public mutating func hash(piece: Int) -> Digest20 {
        let wrong = wrongBlocks.removeValue(forKey: piece)
        if hashing == .shortcut && wrong == nil { return content.hash(ofPiece: piece) }
        hashesComputed += 1
        var hasher = Insecure.SHA1()
        for block in content.geometry.blocks(ofPiece: piece) {
            let data = wrong?[block.offset] ?? content.data(of: block)
            data.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        }
        return Digest20(bytes: Array(hasher.finalize()))!
    }
}
