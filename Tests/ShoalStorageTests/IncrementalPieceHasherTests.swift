import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalStorage

@Suite("IncrementalPieceHasher")
struct IncrementalPieceHasherTests {
    /// Writes block `block` of piece `piece` through `hasher` (padding bytes sent as garbage).
    private func write(_ fixture: TorrentFixture, _ hasher: IncrementalPieceHasher, piece: Int, block: Int) throws {
        let layout = fixture.layout
        let offset = block * FileLayout.blockLength
        var bytes = fixture.bytes(piece: piece, offset: offset, length: layout.length(ofBlock: block, inPiece: piece))
        for span in layout.spans(piece: piece, offset: offset, length: bytes.count) where span.isPadding {
            for index in span.offsetInRange..<(span.offsetInRange + span.length) { bytes[index] = 0xEE }
        }
        try bytes.withUnsafeBytes { try hasher.write(piece: piece, offset: offset, bytes: $0) }
    }

    /// Every piece written in order is hashed as it is written (nothing left to read back), and its digest is
    /// the reference one: padding, sent as garbage, is hashed as zeros.
    @Test func inOrderPiecesAreHashedAsWritten() throws {
        let scratch = try ScratchDirectory()
        let fixture = mixedTorrent
        let layout = fixture.layout
        let hasher = IncrementalPieceHasher(storage: PieceStorage(layout: layout, directory: scratch.at("d")))
        let hashes = try fixture.pieceHashes(in: scratch)
        for piece in 0..<layout.pieceCount {
            for block in 0..<layout.blockCount(ofPiece: piece) {
                try write(fixture, hasher, piece: piece, block: block)
            }
            #expect(hasher.hashedLength(ofPiece: piece) == layout.length(ofPiece: piece), "piece \(piece)")
            #expect(try hasher.hashPiece(piece) == digest(hashes, piece), "piece \(piece)")
        }
        #expect(hasher.trackedPieces == 0)
    }

    /// Blocks in a random order: whatever prefix was hashed is finished from disk, and every digest is right.
    @Test func outOfOrderPiecesAreFinishedFromDisk() throws {
        let scratch = try ScratchDirectory()
        let fixture = mixedTorrent
        let layout = fixture.layout
        let hasher = IncrementalPieceHasher(storage: PieceStorage(layout: layout, directory: scratch.at("d")))
        let hashes = try fixture.pieceHashes(in: scratch)
        for seed in 1...5 {
            var blocks = (0..<layout.pieceCount).flatMap { piece in
                (0..<layout.blockCount(ofPiece: piece)).map { (piece, $0) }
            }
            var generator = SeededGenerator(seed: UInt64(seed))
            blocks.shuffle(using: &generator)
            for (piece, block) in blocks { try write(fixture, hasher, piece: piece, block: block) }
            for piece in 0..<layout.pieceCount {
                #expect(try hasher.hashPiece(piece) == digest(hashes, piece), "seed \(seed), piece \(piece)")
            }
        }
    }

    /// A gap keeps the prefix: block 0, then block 2, then block 1 — block 1 extends the prefix, and block 2 is
    /// read back.
    @Test func aGapKeepsThePrefix() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 65536, files: [.init(name: "a", length: 65536 * 2)])
        let hasher = IncrementalPieceHasher(storage: PieceStorage(layout: fixture.layout, directory: scratch.at("d")))
        let hashes = try fixture.pieceHashes(in: scratch)
        try write(fixture, hasher, piece: 1, block: 0)
        try write(fixture, hasher, piece: 1, block: 2)
        #expect(hasher.hashedLength(ofPiece: 1) == 16384)
        try write(fixture, hasher, piece: 1, block: 1)
        #expect(hasher.hashedLength(ofPiece: 1) == 32768)
        try write(fixture, hasher, piece: 1, block: 3)
        #expect(hasher.hashedLength(ofPiece: 1) == 32768)
        #expect(try hasher.hashPiece(1) == digest(hashes, 1))
    }

    /// Bytes already hashed that are written again: the digest is of what is on disk, never of what was hashed.
    @Test func overwritingHashedBytesFallsBackToTheDisk() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 65536, files: [.init(name: "a", length: 65536)])
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.at("d"))
        let hasher = IncrementalPieceHasher(storage: storage)
        let hashes = try fixture.pieceHashes(in: scratch)
        let garbage = [UInt8](repeating: 0x55, count: 16384)

        // Bad block 1 hashed, then the good block 1 written over it: the prefix is forgotten.
        try write(fixture, hasher, piece: 0, block: 0)
        try garbage.withUnsafeBytes { try hasher.write(piece: 0, offset: 16384, bytes: $0) }
        try write(fixture, hasher, piece: 0, block: 2)
        try write(fixture, hasher, piece: 0, block: 3)
        try write(fixture, hasher, piece: 0, block: 1)
        #expect(hasher.hashedLength(ofPiece: 0) == 0)
        #expect(try hasher.hashPiece(0) == digest(hashes, 0))

        // The other way round: good data hashed, then garbage written over it on disk. The piece must fail.
        for block in 0..<4 { try write(fixture, hasher, piece: 0, block: block) }
        try garbage.withUnsafeBytes { try hasher.write(piece: 0, offset: 32768, bytes: $0) }
        #expect(try hasher.hashPiece(0) != digest(hashes, 0))
        #expect(try hasher.hashPiece(0) == storage.hashPiece(0))
    }

    /// A piece downloaded again after a bad hash starts its prefix afresh at offset 0.
    @Test func aPieceWrittenAgainIsHashedAgain() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 32768, files: [.init(name: "a", length: 32768)])
        let hasher = IncrementalPieceHasher(storage: PieceStorage(layout: fixture.layout, directory: scratch.at("d")))
        let hashes = try fixture.pieceHashes(in: scratch)
        let garbage = [UInt8](repeating: 0x55, count: 16384)
        try garbage.withUnsafeBytes { try hasher.write(piece: 0, offset: 0, bytes: $0) }
        try write(fixture, hasher, piece: 0, block: 1)
        #expect(try hasher.hashPiece(0) != digest(hashes, 0))
        try write(fixture, hasher, piece: 0, block: 0)
        try write(fixture, hasher, piece: 0, block: 1)
        #expect(hasher.hashedLength(ofPiece: 0) == 32768)
        #expect(try hasher.hashPiece(0) == digest(hashes, 0))
    }

    /// Hashing apart from writing (the runtime does them on two threads): the same digests.
    @Test func hashingApartFromWriting() throws {
        let scratch = try ScratchDirectory()
        let fixture = mixedTorrent
        let layout = fixture.layout
        let storage = PieceStorage(layout: layout, directory: scratch.at("d"))
        let hasher = IncrementalPieceHasher(storage: storage)
        let hashes = try fixture.pieceHashes(in: scratch)
        for piece in 0..<layout.pieceCount {
            try fixture.writePiece(piece, to: storage)
            for block in 0..<layout.blockCount(ofPiece: piece) {
                let offset = block * FileLayout.blockLength
                let bytes = fixture.bytes(piece: piece, offset: offset, length: layout.length(ofBlock: block, inPiece: piece))
                bytes.withUnsafeBytes { hasher.wrote(piece: piece, offset: offset, bytes: $0) }
            }
            #expect(hasher.hashedLength(ofPiece: piece) == layout.length(ofPiece: piece))
            #expect(try hasher.hashPiece(piece) == digest(hashes, piece), "piece \(piece)")
        }
    }

    @Test func hashingAPieceDropsItsPrefixAndAPieceOutOfRangeIsRefused() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 32768, files: [.init(name: "a", length: 32768)])
        let hasher = IncrementalPieceHasher(storage: PieceStorage(layout: fixture.layout, directory: scratch.at("d")))
        try write(fixture, hasher, piece: 0, block: 0)
        #expect(hasher.trackedPieces == 1)
        _ = try hasher.hashPiece(0)
        #expect(hasher.trackedPieces == 0)
        #expect(throws: StorageError.self) { try hasher.hashPiece(7) }
    }
}
