import Foundation
import NIOCore
import ShoalCore
import ShoalStorage
import ShoalSwarm
import Testing

@testable import ShoalNIO

@Suite("DiskJob")
struct DiskJobTests {
    /// A one-file torrent of `pieces` pieces of 64 KiB under a fresh directory, and its bytes.
    private struct Fixture {
        let directory: String
        let layout: FileLayout
        let bytes: [UInt8]

        init(pieces: Int) throws {
            directory = NSTemporaryDirectory() + "shoal-diskjob-" + UUID().uuidString
            let length = pieces * 65536
            let file = TorrentFile(path: try TorrentPath(validating: ["f"]), length: Int64(length), offset: 0, attributes: [])
            layout = FileLayout(pieceLength: 65536, files: [file])
            var state: UInt64 = 1
            bytes = (0..<length).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
        }

        func block(_ piece: Int, _ index: Int) -> Block {
            Block(piece: piece, offset: index * 16384, length: 16384)
        }

        func data(_ block: Block) -> ByteBuffer {
            let start = block.piece * 65536 + block.offset
            return ByteBuffer(bytes: bytes[start..<(start + block.length)])
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Writes, then their hashes: a piece written in order and one written out of order both get the digest of
    /// what is on disk.
    @Test func writesThenHashes() throws {
        let fixture = try Fixture(pieces: 3)
        defer { fixture.remove() }
        let storage = PieceStorage(layout: fixture.layout, directory: fixture.directory)
        let hasher = IncrementalPieceHasher(storage: storage)
        var batch: [DiskJob] = []
        var hashes: [DiskJob] = []
        for (piece, order) in [(0, [0, 1, 2, 3]), (2, [3, 1, 0, 2])] {
            for index in order {
                let block = fixture.block(piece, index)
                batch.append(.write(block, fixture.data(block)))
                hashes.append(.hashBlock(block, fixture.data(block)))
            }
        }
        hashes += [.hash(0), .hash(2)]
        // The writes lane, then the hashes lane (the runtime asks for a piece's hash once its writes are done).
        let pool = ReadBufferPool()
        let results =
            DiskJob.run(batch, hasher: hasher, readBuffers: pool).results
            + DiskJob.run(hashes, hasher: hasher, readBuffers: pool).results
        #expect(results.count == 18)
        var digests: [Int: Digest20] = [:]
        var written = 0
        var hashed = 0
        for result in results {
            switch result {
            case .written: written += 1
            case .blockHashed: hashed += 1
            case .hashed(let piece, let digest): digests[piece] = digest
            case .read: Issue.record("no read was asked for")
            }
        }
        #expect(written == 8 && hashed == 8)
        #expect(hasher.trackedPieces == 0)
        // The same as hashing what is on disk, which the storage tests check against reference digests.
        #expect(digests == [0: try storage.hashPiece(0), 2: try storage.hashPiece(2)])
    }

    /// Consecutive reads of a piece are read together; every peer gets exactly its block.
    /// A write that fails stops its batch there: the jobs before it keep their results (blocks written before
    /// a disk error still count towards their pieces), those after it do not run, and the error says why.
    @Test func aFailedWriteKeepsWhatRanBeforeIt() throws {
        let fixture = try Fixture(pieces: 2)
        defer { fixture.remove() }
        let storage = PieceStorage(layout: fixture.layout, directory: fixture.directory)
        let hasher = IncrementalPieceHasher(storage: storage)
        let outside = Block(piece: 7, offset: 0, length: 16384)
        let batch: [DiskJob] = [
            .write(fixture.block(0, 0), fixture.data(fixture.block(0, 0))),
            .write(fixture.block(0, 1), fixture.data(fixture.block(0, 1))),
            .write(outside, fixture.data(fixture.block(0, 2))),
            .write(fixture.block(0, 2), fixture.data(fixture.block(0, 2))),
        ]
        let outcome = DiskJob.run(batch, hasher: hasher, readBuffers: ReadBufferPool())
        let written = outcome.results.compactMap { result -> Block? in
            if case .written(let block) = result { return block }
            return nil
        }
        #expect(written == [fixture.block(0, 0), fixture.block(0, 1)])
        #expect(outcome.failure != nil)
    }

    @Test func readsComeBackAsTheirBlocks() throws {
        let fixture = try Fixture(pieces: 3)
        defer { fixture.remove() }
        let hasher = IncrementalPieceHasher(storage: PieceStorage(layout: fixture.layout, directory: fixture.directory))
        var writes: [DiskJob] = []
        for piece in 0..<3 {
            for index in 0..<4 { writes.append(.write(fixture.block(piece, index), fixture.data(fixture.block(piece, index)))) }
        }
        #expect(DiskJob.run(writes, hasher: hasher, readBuffers: ReadBufferPool()).failure == nil)
        let asked: [(PeerKey, Block)] = [
            (PeerKey(1), fixture.block(0, 1)), (PeerKey(1), fixture.block(0, 2)), (PeerKey(2), fixture.block(0, 3)),
            (PeerKey(1), fixture.block(1, 0)), (PeerKey(2), fixture.block(2, 3)), (PeerKey(2), fixture.block(2, 0)),
            (PeerKey(1), fixture.block(2, 1)),
        ]
        let reads = asked.map { DiskJob.read($0.0, $0.1) }
        let results = DiskJob.run(reads, hasher: hasher, readBuffers: ReadBufferPool()).results
        #expect(results.count == asked.count)
        for (result, (key, block)) in zip(results, asked) {
            guard case .read(let readKey, let readBlock, let data) = result else {
                Issue.record("not a read: \(result)")
                continue
            }
            #expect(readKey == key && readBlock == block)
            #expect(data == fixture.data(block))
        }
    }
}
