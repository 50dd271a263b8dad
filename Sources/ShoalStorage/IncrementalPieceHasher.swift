import Crypto
import ShoalCore
import Synchronization

/// Writes blocks through a ``PieceStorage`` and hashes each piece as its blocks are written, so that a piece
/// written in order is never read back from disk to be verified.
///
/// For each piece it keeps a SHA-1 of the piece's *prefix*: the bytes from offset 0 that were written in
/// order. ``hashPiece(_:)`` finishes that hash with the rest of the piece as it is on disk (all of it when
/// nothing was hashed yet), so the digest is always SHA-1 over the piece's bytes as storage holds them:
///
/// - a write at offset 0 starts the piece's prefix afresh (a piece being downloaded again after a bad hash);
/// - a write at the end of the prefix extends it;
/// - a write past the end of the prefix (a gap) leaves the prefix as it is: those bytes are read back later;
/// - a write that overlaps the prefix anywhere but at offset 0 forgets the prefix: the bytes hashed are no
///   longer the bytes on disk, so the whole piece is read back.
///
/// Bytes that fall on padding (BEP 47) or outside every file are hashed as zeros, as ``PieceStorage`` reads
/// them, whatever the block held there.
///
/// Calls for one piece must be ordered by the caller (its writes, then its hash), as with ``PieceStorage``;
/// calls for different pieces may come from any threads. The state is a SHA-1 context per piece with hashed
/// bytes that has not been hashed yet (about a hundred bytes each); ``hashPiece(_:)`` drops it.
public final class IncrementalPieceHasher: Sendable {
    public let storage: PieceStorage

    private struct Prefix {
        var hasher: Insecure.SHA1
        /// Bytes of the piece hashed so far, from offset 0.
        var length: Int
    }

    private let prefixes: Mutex<[Int: Prefix]>

    public init(storage: PieceStorage) {
        self.storage = storage
        self.prefixes = Mutex([:])
    }

    /// The number of pieces with a hashed prefix (for tests and memory accounting).
    public var trackedPieces: Int { prefixes.withLock { $0.count } }

    /// How many bytes of piece `piece` are hashed (0 when none are tracked).
    public func hashedLength(ofPiece piece: Int) -> Int {
        prefixes.withLock { $0[piece]?.length ?? 0 }
    }

    /// Writes `bytes` at `offset` in piece `piece` (``PieceStorage/write(piece:offset:bytes:)``) and hashes
    /// them when they start or extend the piece's hashed prefix.
    public func write(piece: Int, offset: Int, bytes: UnsafeRawBufferPointer) throws(StorageError) {
        try storage.write(piece: piece, offset: offset, bytes: bytes)
        wrote(piece: piece, offset: offset, bytes: bytes)
    }

    /// Hashes `bytes`, written (or being written, by another thread) at `offset` in piece `piece`, when they
    /// start or extend the piece's hashed prefix: the half of ``write(piece:offset:bytes:)`` that does not touch
    /// the disk. Calls for a piece must come in the order of its writes, and ``hashPiece(_:)`` only once they
    /// are all on disk.
    public func wrote(piece: Int, offset: Int, bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, piece >= 0, piece < storage.layout.pieceCount else { return }
        let layout = storage.layout
        prefixes.withLock { prefixes in
            var prefix: Prefix
            if offset == 0 {
                prefix = Prefix(hasher: Insecure.SHA1(), length: 0)
            } else if let known = prefixes[piece], known.length == offset {
                prefix = known
            } else {
                if let known = prefixes[piece], offset < known.length {
                    prefixes[piece] = nil  // Bytes already hashed were overwritten.
                }
                return
            }
            // Hashed under the lock: the prefix must not be extended twice at once. The runtime writes
            // from one thread at a time, so the lock is not contended.
            let start = layout.range(ofPiece: piece).lowerBound + Int64(offset)
            layout.forEachSpan(in: start..<(start + Int64(bytes.count))) { span in
                if span.fileIndex == nil || span.isPadding {
                    Self.hashZeros(span.length, into: &prefix.hasher)
                } else {
                    prefix.hasher.update(
                        bufferPointer: UnsafeRawBufferPointer(
                            rebasing: bytes[span.offsetInRange..<(span.offsetInRange + span.length)]))
                }
            }
            prefix.length += bytes.count
            prefixes[piece] = prefix
        }
    }

    /// The SHA-1 of piece `piece`: its hashed prefix finished with the rest of the piece read from disk
    /// (``PieceStorage/hashPiece(_:)`` when no prefix is known). The piece's prefix is dropped.
    public func hashPiece(_ piece: Int) throws(StorageError) -> Digest20 {
        guard piece >= 0, piece < storage.layout.pieceCount else { return try storage.hashPiece(piece) }
        guard var prefix = prefixes.withLock({ $0.removeValue(forKey: piece) }) else {
            return try storage.hashPiece(piece)
        }
        let length = storage.layout.length(ofPiece: piece)
        if prefix.length < length {
            try storage.hashRest(ofPiece: piece, from: prefix.length, into: &prefix.hasher)
        }
        return Digest20(bytes: Array(prefix.hasher.finalize()))!
    }

    private static let zeros = [UInt8](repeating: 0, count: 16384)

    private static func hashZeros(_ count: Int, into hasher: inout Insecure.SHA1) {
        var left = count
        zeros.withUnsafeBytes { zeros in
            while left > 0 {
                let chunk = min(left, zeros.count)
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: zeros[..<chunk]))
                left -= chunk
            }
        }
    }
}
