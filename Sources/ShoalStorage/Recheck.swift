import ShoalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Verifies the data of a torrent already on disk against its v1 piece hashes (BEP 3 `pieces`), on all cores:
/// what a client does when it starts without usable resume data, or for the pieces resume data cannot vouch
/// for.
///
/// It runs on ``PieceHasher``'s machinery (worker threads taking batches of pieces, large sequential reads)
/// in its tolerant mode: a piece is read only if every file it touches exists and is long enough, padding
/// (BEP 47) and v2 gaps count as zeros, and a piece that cannot be read is simply not verified. Missing or
/// short files are the normal case (a download in progress), not errors. Files are examined without
/// following symbolic links (as ``PieceStorage`` opens them): a link at a file's place counts as missing.
public struct Recheck: Sendable {
    /// Worker threads; nil uses every core.
    public var threads: Int?
    /// How files are read. The default, `read`, copes with files that shrink while they are read (a
    /// mapping would raise SIGBUS); `mappedMemory` is about 10% faster on data in the page cache.
    public var readMethod: PieceHasher.ReadMethod

    public init(threads: Int? = nil, readMethod: PieceHasher.ReadMethod = .read) {
        self.threads = threads
        self.readMethod = readMethod
    }

    /// The pieces of `layout` whose data under `directory` matches `pieceHashes` (20 bytes per piece).
    ///
    /// `pieces`, if given, limits the check to those pieces (for instance
    /// ``ResumeData/Validation/needsRecheck``); others are left clear. `progress` receives the bytes of the
    /// piece space covered so far (read or skipped), from the worker threads, one call at a time, rising to
    /// ``FileLayout/totalLength``.
    ///
    /// Throws for a torrent without v1 piece hashes (a v2-only torrent is verified by its merkle trees,
    /// BEP 52, which this does not do) and for disk errors other than a missing or short file (a file that
    /// cannot be read for lack of permission, an I/O error).
    public func verify(
        layout: FileLayout, pieceHashes: [UInt8], directory: String, pieces: Bitfield? = nil,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) throws(StorageError) -> Bitfield {
        guard pieceHashes.count == layout.pieceCount * 20 else {
            throw StorageError(
                code: .invalidArgument,
                message: "\(pieceHashes.count) bytes of piece hashes for \(layout.pieceCount) pieces (v1 hashes needed)")
        }
        if let pieces, pieces.count != layout.pieceCount {
            throw StorageError(code: .invalidArgument, message: "\(pieces.count) pieces asked of \(layout.pieceCount)")
        }
        let root = DownloadDirectory(path: directory)
        var wanted = (0..<layout.pieceCount).map { pieces?[$0] ?? true }
        var segments: [Segment] = []
        segments.reserveCapacity(layout.files.count)
        var position: Int64 = 0
        for (index, file) in layout.files.enumerated() where file.length > 0 {
            if file.offset > position {
                segments.append(Segment(path: nil, length: file.offset - position))  // A v2 gap: zeros.
            }
            position = file.offset + file.length
            if file.isPadding {
                segments.append(Segment(path: nil, length: file.length))
                continue
            }
            segments.append(Segment(path: root.fullPath(file.path), length: file.length))
            // Bytes of the file on disk: the pieces from the first byte beyond cannot be read.
            let info = try? root.status(file.path)
            let available: Int64 =
                if let info, (info.st_mode & S_IFMT) == S_IFREG { min(Int64(info.st_size), file.length) } else { 0 }
            if available < file.length {
                let firstUnreadable = Int((file.offset + available) / Int64(layout.pieceLength))
                for piece in firstUnreadable..<layout.pieces(coveringFile: index).upperBound {
                    wanted[piece] = false
                }
            }
        }
        let hasher = PieceHasher(pieceLength: layout.pieceLength, threads: threads, readMethod: readMethod)
        return try hasher.verifyPieces(of: segments, expected: pieceHashes, wanted: wanted, progress: progress)
    }
}
