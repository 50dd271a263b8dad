import NIOCore
import ShoalCore
import ShoalStorage
import ShoalSwarm

/// One piece of storage work the state machine asked for (a `write`, `read` or `hash` action).
enum DiskJob: Sendable {
    /// Write a block (no hashing: see `hashBlock`).
    case write(Block, ByteBuffer)
    /// Hash a block written in the same order on the writes lane (``IncrementalPieceHasher/wrote(piece:offset:bytes:)``).
    case hashBlock(Block, ByteBuffer)
    case read(PeerKey, Block)
    case hash(Int)

    /// The most bytes read with one `pread`: consecutive blocks of a piece are read together, up to this.
    static let maxReadRun = 1 << 20

    /// What a batch did: the results of the jobs that ran, in order, and the error that stopped it, if one
    /// did (the jobs after it did not run; those before it keep their results, so that blocks written before
    /// a disk error still count).
    struct Outcome {
        var results: [DiskResult] = []
        var failure: StorageError?
    }

    /// Runs a batch in order on the calling thread (a thread-pool thread, never the event loop), up to the
    /// first job that fails. Consecutive reads of one piece become one read into one buffer (from
    /// `readBuffers`), which each block then slices without copying.
    static func run(_ batch: [DiskJob], hasher: IncrementalPieceHasher, readBuffers: ReadBufferPool) -> Outcome {
        var outcome = Outcome()
        outcome.results.reserveCapacity(batch.count)
        do throws(StorageError) {
            try run(batch, hasher: hasher, readBuffers: readBuffers, into: &outcome.results)
        } catch {
            outcome.failure = error
        }
        return outcome
    }

    private static func run(
        _ batch: [DiskJob], hasher: IncrementalPieceHasher, readBuffers: ReadBufferPool,
        into results: inout [DiskResult]
    ) throws(StorageError)
    {
        var index = batch.startIndex
        while index < batch.endIndex {
            switch batch[index] {
            case .write(let block, let data):
                try data.withUnsafeReadableBytes { (bytes) throws(StorageError) in
                    try hasher.storage.write(piece: block.piece, offset: block.offset, bytes: bytes)
                }
                results.append(.written(block))
                index += 1
            case .hashBlock(let block, let data):
                data.withUnsafeReadableBytes { bytes in
                    hasher.wrote(piece: block.piece, offset: block.offset, bytes: bytes)
                }
                results.append(.blockHashed(block))
                index += 1
            case .hash(let piece):
                results.append(.hashed(piece, try hasher.hashPiece(piece)))
                index += 1
            case .read(let key, let first):
                // The run of reads that follow on in the same piece.
                var run: [(PeerKey, Block)] = [(key, first)]
                var end = first.offset + first.length
                var next = index + 1
                while next < batch.endIndex, case .read(let nextKey, let block) = batch[next], block.piece == first.piece,
                    block.offset == end, end - first.offset + block.length <= maxReadRun
                {
                    run.append((nextKey, block))
                    end += block.length
                    next += 1
                }
                let length = end - first.offset
                var buffer = try readBuffers.buffer(length: length) { (bytes) throws(StorageError) in
                    try hasher.storage.read(piece: first.piece, offset: first.offset, length: length, into: bytes)
                }
                for (key, block) in run {
                    results.append(.read(key, block, buffer.readSlice(length: block.length)!))
                }
                index = next
            }
        }
    }
}

/// What a ``DiskJob`` produced, for the state machine.
enum DiskResult: Sendable {
    case written(Block)
    /// A written block's bytes went into its piece's hash (or were left for the piece's read-back).
    case blockHashed(Block)
    case read(PeerKey, Block, ByteBuffer)
    case hashed(Int, Digest20)
}

/// A queue of storage work that runs one batch at a time (state on the event loop).
struct DiskLane {
    enum Name: Sendable {
        /// Writes, in the order the state machine asked for them.
        case writes
        /// Hashing, beside the writes so that both use a core: every written block in the order of the writes
        /// (`hashBlock`), and a piece's final hash, which the state machine asks for once its writes are done.
        case hashes
        /// Reads for peers.
        case reads
    }

    var running = false
    var queued: [DiskJob] = []
}
