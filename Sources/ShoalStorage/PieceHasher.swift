import ShoalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Computes the SHA-1 of every piece of a torrent's content on all cores: the v1 `pieces` string of the
/// info dictionary (BEP 3), used to create a torrent and to recheck one.
///
/// The content is the concatenation of the files, in order; pieces run across file boundaries and the last
/// piece may be short. Workers take batches of consecutive pieces from a shared counter (a worker held up
/// by a slow part of the disk does not hold up the others), read each batch in large sequential chunks and
/// hash straight from the memory mapping (or from a `pread` buffer, see `ReadMethod`).
///
/// The same machinery verifies data already on disk (`verifyPieces`, behind ``Recheck``): pieces whose files
/// are missing or short are skipped rather than failing the run, and padding reads as zeros.
public struct PieceHasher: Sendable {
    /// How the workers get at the bytes.
    ///
    /// Measured on 1 GiB, 256 KiB pieces, 2 cores with SHA-NI (SHA-1 alone: 3.3 GB/s): from the page
    /// cache, `mappedMemory` 3.2 GB/s and `read` 2.85 GB/s when the file is cached in large folios (as after
    /// a sequential read from disk or a write in large blocks), both 2.8 GB/s when it is cached in 4 KiB
    /// pages; from disk (cold cache), `mappedMemory` about 2.1 GB/s and `read` about 1.9 GB/s.
    public enum ReadMethod: Sendable, Hashable {
        /// Hash the page cache in place where it can: each window of up to 64 MiB that is in the page cache
        /// is mapped and hashed without a copy; a window that is not (cold data) is read with `pread` in
        /// 4 MiB chunks, which reads ahead better than page faults do. Files that cannot be mapped (a pipe,
        /// a device) and stretches under 1 MiB are read with `pread`.
        ///
        /// The one risk: if another process truncates a file while a mapped window of it is being hashed,
        /// the process receives SIGBUS. The size is checked after each window is mapped, which leaves a gap
        /// of milliseconds; use `read` where files may shrink under the hasher.
        case mappedMemory
        /// `pread` in 4 MiB chunks into a buffer per worker: one copy more, but a file that shrinks is
        /// always reported as `fileTooShort`.
        case read
    }

    /// Bytes per piece (BEP 3 "piece length"); at least 1.
    public let pieceLength: Int
    /// Worker threads; at least 1.
    public let threads: Int
    public let readMethod: ReadMethod

    /// A hasher for pieces of `pieceLength` bytes on `threads` threads (by default one per processor).
    public init(pieceLength: Int, threads: Int? = nil, readMethod: ReadMethod = .mappedMemory) {
        self.pieceLength = pieceLength
        self.threads = max(1, threads ?? WorkerThreads.processorCount)
        self.readMethod = readMethod
    }

    /// Bytes a worker takes at a time (rounded to whole pieces, at least one piece): long enough that taking
    /// work costs nothing, short enough that workers finish together.
    static let batchBytes = 8 << 20
    /// The `pread` buffer of each worker.
    static let readBufferBytes = 4 << 20
    /// File segments shorter than this are read with `pread` even when mapping: mapping costs more.
    static let mapThreshold: Int64 = 1 << 20

    /// The number of pieces of `totalLength` bytes of content.
    public func pieceCount(totalLength: Int64) -> Int {
        guard pieceLength > 0, totalLength > 0 else { return 0 }
        return Int((totalLength + Int64(pieceLength) - 1) / Int64(pieceLength))
    }

    /// The SHA-1 digests of all pieces of the concatenation of `files`, 20 bytes per piece, in order
    /// (empty for empty content).
    ///
    /// Every file is checked first (it exists, it can be opened, a regular file is at least `length` bytes
    /// long); then the pieces are hashed. `progress`, if given, receives the number of bytes hashed so far
    /// after each batch of pieces (every few MiB); it is called from the worker threads, one call at a time,
    /// with totals that never decrease, and last with the total length.
    ///
    /// Throws the first error any worker meets; the other workers then stop at their next batch.
    public func hashPieces(
        of files: [HashedFile], progress: (@Sendable (Int64) -> Void)? = nil
    ) throws(StorageError) -> [UInt8] {
        guard pieceLength > 0 else {
            throw StorageError(code: .invalidArgument, message: "piece length \(pieceLength) is below 1")
        }
        var totalLength: Int64 = 0
        for file in files {
            guard file.length >= 0 else {
                throw StorageError(code: .invalidArgument, path: file.path, message: "negative length \(file.length)")
            }
            try Self.check(file)
            let (sum, overflow) = totalLength.addingReportingOverflow(file.length)
            guard !overflow else {
                throw StorageError(code: .invalidArgument, path: file.path, message: "total length overflows")
            }
            totalLength = sum
        }
        let pieceCount = pieceCount(totalLength: totalLength)
        guard pieceCount > 0 else {
            progress?(0)
            return []
        }

        let job = Job(
            segments: files.map { Segment(path: $0.path, length: $0.length) }, totalLength: totalLength,
            pieceLength: pieceLength, pieceCount: pieceCount, threads: threads, map: readMethod == .mappedMemory,
            mode: .hash, progress: progress)
        WorkerThreads.run(count: min(threads, job.batchCount)) { _ in job.work() }
        return try job.digests()
    }

    /// Which pieces of the concatenation of `segments` have the SHA-1 in `expected` (20 bytes per piece),
    /// reading only the pieces for which `wanted` is true: the tolerant form behind ``Recheck``.
    ///
    /// A piece whose read fails because a file is missing or ends early (`fileNotFound`, `fileTooShort`:
    /// it changed since the caller looked) is simply not verified; any other error stops the check and is
    /// thrown. `progress` receives the bytes of the content covered so far, read or skipped, and last the
    /// total.
    func verifyPieces(
        of segments: [Segment], expected: [UInt8], wanted: [Bool], progress: (@Sendable (Int64) -> Void)? = nil
    ) throws(StorageError) -> Bitfield {
        let totalLength = segments.reduce(0) { $0 + $1.length }
        let pieceCount = pieceCount(totalLength: totalLength)
        guard pieceLength > 0, expected.count == pieceCount * 20, wanted.count == pieceCount else {
            throw StorageError(
                code: .invalidArgument,
                message: "\(expected.count / 20) piece hashes and \(wanted.count) flags for \(pieceCount) pieces")
        }
        guard pieceCount > 0 else {
            progress?(0)
            return Bitfield(count: 0)
        }
        let job = Job(
            segments: segments, totalLength: totalLength, pieceLength: pieceLength, pieceCount: pieceCount,
            threads: threads, map: readMethod == .mappedMemory, mode: .verify(expected: expected, wanted: wanted),
            progress: progress)
        WorkerThreads.run(count: min(threads, job.batchCount)) { _ in job.work() }
        return try job.verified()
    }

    /// Fails early, before any hashing, for a file that is missing, unreadable, a directory, or too short.
    private static func check(_ file: HashedFile) throws(StorageError) {
        var info = stat()
        guard stat(file.path, &info) == 0 else {
            throw StorageError.system(errno, operation: "stat", path: file.path)
        }
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            throw StorageError(code: .isDirectory, path: file.path, message: "is a directory")
        case S_IFREG:
            guard Int64(info.st_size) >= file.length else {
                throw StorageError(
                    code: .fileTooShort, path: file.path,
                    message: "file has \(info.st_size) bytes, expected \(file.length)")
            }
        default:
            break  // A pipe or a device: its size means nothing; reading will tell.
        }
        guard access(file.path, R_OK) == 0 else {
            throw StorageError.system(errno, operation: "open", path: file.path)
        }
    }
}

/// A stretch of content as the piece hasher reads it: `length` bytes from the start of the file at `path`,
/// or zeros (padding, BEP 47) when `path` is nil.
struct Segment: Sendable, Hashable {
    var path: String?
    var length: Int64
}

extension PieceHasher {
    /// What a job computes.
    enum Mode: Sendable {
        /// Every piece's digest.
        case hash
        /// Which of the `wanted` pieces have the digest in `expected`.
        case verify(expected: [UInt8], wanted: [Bool])
    }

    /// One call of `hashPieces` or `verifyPieces`: what the workers share.
    private final class Job: Sendable {
        let segments: [Segment]
        /// The offset of each segment in the content.
        let starts: [Int64]
        let totalLength: Int64
        let pieceLength: Int
        let pieceCount: Int
        let piecesPerBatch: Int
        let batchCount: Int
        let map: Bool
        let mode: Mode
        let progress: (@Sendable (Int64) -> Void)?

        /// The next batch to take.
        let nextBatch = Atomic<Int>(0)
        /// Set on the first error: workers stop taking batches.
        let failed = Atomic<Bool>(false)
        let firstError = Mutex<StorageError?>(nil)
        /// Each batch's digests (hash mode) or the verified pieces (verify mode), filled in as batches finish.
        let results: Mutex<[[UInt8]]>
        let verifiedPieces = Mutex<[Int]>([])
        /// Bytes done so far, reported under this lock so that reports come one at a time and in order.
        let hashedBytes = Mutex<Int64>(0)

        init(
            segments: [Segment], totalLength: Int64, pieceLength: Int, pieceCount: Int, threads: Int, map: Bool,
            mode: Mode, progress: (@Sendable (Int64) -> Void)?
        ) {
            self.segments = segments
            var starts: [Int64] = []
            starts.reserveCapacity(segments.count)
            var offset: Int64 = 0
            for segment in segments {
                starts.append(offset)
                offset += segment.length
            }
            self.starts = starts
            self.totalLength = totalLength
            self.pieceLength = pieceLength
            self.pieceCount = pieceCount
            // At least a few batches per thread, so that the work evens out at the end.
            let bySize = max(1, PieceHasher.batchBytes / pieceLength)
            let byCount = max(1, pieceCount / (threads * 4))
            self.piecesPerBatch = min(bySize, byCount)
            self.batchCount = (pieceCount + piecesPerBatch - 1) / piecesPerBatch
            self.map = map
            self.mode = mode
            self.progress = progress
            self.results = Mutex(Array(repeating: [], count: batchCount))
        }

        /// What one worker holds: its read buffer, a block of zeros for padding, and the file it has open.
        private struct Worker: ~Copyable {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: PieceHasher.readBufferBytes, alignment: 4096)
            let zeros: UnsafeRawBufferPointer
            /// The last file opened, which the next batch most likely continues.
            var open: (index: Int, file: ContentFile)?

            init() {
                let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
                zeros.initializeMemory(as: UInt8.self, repeating: 0)
                self.zeros = UnsafeRawBufferPointer(zeros)
            }

            deinit {
                buffer.deallocate()
                zeros.deallocate()
            }
        }

        /// One worker: takes batches until none are left or a worker has failed.
        func work() {
            var worker = Worker()
            while !failed.load(ordering: .relaxed) {
                let batch = nextBatch.wrappingAdd(1, ordering: .relaxed).oldValue
                guard batch < batchCount else { return }
                let firstPiece = batch * piecesPerBatch
                let pieces = firstPiece..<min(firstPiece + piecesPerBatch, pieceCount)
                do throws(StorageError) {
                    switch mode {
                    case .hash:
                        let digests = try hash(pieces, &worker)
                        results.withLock { $0[batch] = digests }
                    case .verify(let expected, let wanted):
                        let verified = try verify(pieces, expected: expected, wanted: wanted, &worker)
                        verifiedPieces.withLock { $0.append(contentsOf: verified) }
                    }
                    let byteCount = byteRange(of: pieces).count
                    hashedBytes.withLock { total in
                        total += Int64(byteCount)
                        progress?(total)
                    }
                } catch {
                    firstError.withLock { first in
                        if first == nil { first = error }
                    }
                    failed.store(true, ordering: .relaxed)
                    return
                }
            }
        }

        /// Where `pieces` lie in the content.
        private func byteRange(of pieces: Range<Int>) -> Range<Int64> {
            Int64(pieces.lowerBound) * Int64(pieceLength)..<min(Int64(pieces.upperBound) * Int64(pieceLength), totalLength)
        }

        /// The wanted pieces of `pieces` that match `expected`. Runs of consecutive wanted pieces are read in
        /// one sweep; when a sweep meets a missing or shortened file, its pieces are tried one by one so that
        /// only those touching that file go unverified.
        private func verify(
            _ pieces: Range<Int>, expected: [UInt8], wanted: [Bool], _ worker: inout Worker
        ) throws(StorageError) -> [Int] {
            var verified: [Int] = []
            func compare(_ digests: [UInt8], from first: Int) {
                for offset in 0..<(digests.count / 20) {
                    let piece = first + offset
                    if digests[(offset * 20)..<(offset * 20 + 20)].elementsEqual(expected[(piece * 20)..<(piece * 20 + 20)]) {
                        verified.append(piece)
                    }
                }
            }
            var piece = pieces.lowerBound
            while piece < pieces.upperBound {
                guard wanted[piece] else {
                    piece += 1
                    continue
                }
                var runEnd = piece + 1
                while runEnd < pieces.upperBound && wanted[runEnd] { runEnd += 1 }
                do throws(StorageError) {
                    compare(try hash(piece..<runEnd, &worker), from: piece)
                } catch where error.code == .fileNotFound || error.code == .fileTooShort {
                    worker.open = nil
                    for single in piece..<runEnd {
                        do throws(StorageError) {
                            compare(try hash(single..<(single + 1), &worker), from: single)
                        } catch where error.code == .fileNotFound || error.code == .fileTooShort {
                            worker.open = nil  // This piece is not verified; go on with the next.
                        }
                    }
                }
                piece = runEnd
            }
            return verified
        }

        /// The digests of `pieces`, read in order across the segments.
        private func hash(_ pieces: Range<Int>, _ worker: inout Worker) throws(StorageError) -> [UInt8] {
            let range = byteRange(of: pieces)
            let (start, end) = (range.lowerBound, range.upperBound)
            var stream = PieceStream(pieceLength: pieceLength, byteCount: end - start)

            // The last segment that starts at or before `start` (empty segments at `start` are skipped
            // below, as they hold nothing).
            var index = Self.lastIndex(in: starts, notAbove: start)
            var offset = start
            while offset < end && index < segments.count {
                let segmentStart = starts[index]
                let segmentEnd = segmentStart + segments[index].length
                if segmentEnd <= offset {
                    index += 1
                    continue
                }
                let stretchEnd = min(end, segmentEnd)
                guard let path = segments[index].path else {
                    var left = stretchEnd - offset
                    while left > 0 {
                        let count = Int(min(left, Int64(worker.zeros.count)))
                        stream.consume(UnsafeRawBufferPointer(rebasing: worker.zeros[..<count]))
                        left -= Int64(count)
                    }
                    offset = stretchEnd
                    index += 1
                    continue
                }
                let file: ContentFile
                if let open = worker.open, open.index == index {
                    file = open.file
                } else {
                    worker.open = nil  // Close the previous file first.
                    file = try ContentFile(path: path)
                    worker.open = (index, file)
                }
                let stretch = (offset - segmentStart)..<(stretchEnd - segmentStart)
                try file.read(stretch, map: map && stretch.count >= PieceHasher.mapThreshold, buffer: worker.buffer) {
                    stream.consume($0)
                }
                offset = stretchEnd
                index += 1
            }
            assert(stream.isComplete)
            return stream.digests
        }

        /// The index of the last element of sorted `values` that is at most `value` (0 if none).
        private static func lastIndex(in values: [Int64], notAbove value: Int64) -> Int {
            var low = 0
            var high = values.count
            while high - low > 1 {
                let middle = (low + high) / 2
                if values[middle] <= value { low = middle } else { high = middle }
            }
            return low
        }

        /// The `pieces` string, or the first error.
        func digests() throws(StorageError) -> [UInt8] {
            if let error = firstError.withLock({ $0 }) {
                throw error
            }
            return results.withLock { batches in
                var pieces: [UInt8] = []
                pieces.reserveCapacity(pieceCount * 20)
                for batch in batches {
                    pieces.append(contentsOf: batch)
                }
                return pieces
            }
        }

        /// The verified pieces, or the first error.
        func verified() throws(StorageError) -> Bitfield {
            if let error = firstError.withLock({ $0 }) {
                throw error
            }
            var bitfield = Bitfield(count: pieceCount)
            for piece in verifiedPieces.withLock({ $0 }) {
                bitfield.set(piece)
            }
            return bitfield
        }
    }
}
