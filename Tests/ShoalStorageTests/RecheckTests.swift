import Foundation
import ShoalCore
import Synchronization
import Testing

@testable import ShoalStorage

@Suite("Recheck")
struct RecheckTests {
    /// A download in progress: some pieces whole, one with a block missing, one corrupted on disk, and the
    /// files only some pieces reach not created at all. The recheck finds exactly the whole, intact pieces,
    /// whatever the threads and read method.
    @Test func partialDownloadIsWhatWasWritten() throws {
        let scratch = try ScratchDirectory()
        let fixture = mixedTorrent
        let layout = fixture.layout
        let downloads = scratch.at("downloads")
        let storage = PieceStorage(layout: layout, directory: downloads)
        try fixture.writePiece(0, to: storage)  // a, dir/b
        try fixture.writePiece(1, to: storage)  // dir/b, padding
        try fixture.writeBlock(0, of: 2, to: storage)  // c, half of the piece
        try fixture.writePiece(3, to: storage)  // c
        try fixture.writePiece(5, to: storage)  // f's end (f is created sparse, d and e not at all)
        let hashes = try fixture.pieceHashes(in: scratch)

        var expected = Bitfield(count: layout.pieceCount)
        for piece in [0, 1, 3, 5] { expected.set(piece) }
        for method in [PieceHasher.ReadMethod.read, .mappedMemory] {
            for threads in [1, 2] {
                let found = try Recheck(threads: threads, readMethod: method).verify(
                    layout: layout, pieceHashes: hashes, directory: downloads)
                #expect(found == expected, "\(method), \(threads) threads")
            }
        }

        // Corrupt a byte of piece 3 on disk; complete piece 2 and 4.
        try fixture.writeBlock(1, of: 2, to: storage)
        try fixture.writePiece(4, to: storage)
        try storage.sync()
        let cPath = storage.path(ofFile: 4)
        var c = fileBytes(cPath)!
        c[40000] ^= 1
        try Data(c).write(to: URL(fileURLWithPath: cPath))
        expected.set(2)
        expected.set(4)
        expected.clear(3)
        #expect(try Recheck().verify(layout: layout, pieceHashes: hashes, directory: downloads) == expected)

        // Only the pieces asked for.
        var asked = Bitfield(count: layout.pieceCount)
        asked.set(3)
        asked.set(4)
        var onlyFour = Bitfield(count: layout.pieceCount)
        onlyFour.set(4)
        #expect(try Recheck().verify(layout: layout, pieceHashes: hashes, directory: downloads, pieces: asked) == onlyFour)
    }

    /// A file cut short: the pieces it still holds whole verify, those past its end are not read. A file
    /// replaced by a link to the right content is not followed.
    @Test func shortAndLinkedFilesAreTolerated() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 50000), .init(name: "b", length: 20000)])
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        for piece in 0..<fixture.layout.pieceCount { try fixture.writePiece(piece, to: storage) }
        let hashes = try fixture.pieceHashes(in: scratch)
        #expect(truncate(storage.path(ofFile: 0), 40000) == 0)
        #expect(try Recheck().verify(layout: fixture.layout, pieceHashes: hashes, directory: scratch.path).description == "11001")

        let moved = scratch.at("b-elsewhere")
        try FileManager.default.moveItem(atPath: storage.path(ofFile: 1), toPath: moved)
        #expect(symlink(moved, storage.path(ofFile: 1)) == 0)
        #expect(try Recheck().verify(layout: fixture.layout, pieceHashes: hashes, directory: scratch.path).description == "11000")

        // Nothing there at all: nothing verified, nothing read, no error.
        #expect(try Recheck().verify(layout: fixture.layout, pieceHashes: hashes, directory: scratch.at("none")).isEmpty)
    }

    @Test func progressCoversTheWholePieceSpace() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: (0..<6).map { .init(name: "f\($0)", length: 60000) })
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        for piece in stride(from: 0, to: fixture.layout.pieceCount, by: 2) { try fixture.writePiece(piece, to: storage) }
        let reports = Mutex<[Int64]>([])
        let found = try Recheck(threads: 2).verify(
            layout: fixture.layout, pieceHashes: try fixture.pieceHashes(in: scratch), directory: scratch.path
        ) { total in reports.withLock { $0.append(total) } }
        let seen = reports.withLock { $0 }
        #expect(seen == seen.sorted())
        #expect(seen.last == fixture.layout.totalLength)
        // The even pieces were written whole; the odd ones are holes (zeros) or past a file's end.
        #expect(found.setIndices == Array(stride(from: 0, to: fixture.layout.pieceCount, by: 2)))
    }

    /// Padding longer than the zeros a worker keeps at hand, between files and inside pieces.
    @Test func longPaddingCountsAsZeros() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(
            pieceLength: 16384,
            files: [.init(name: "a", length: 1000), .init(name: "pad", length: 150_000, padding: true), .init(name: "b", length: 20000)])
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        for piece in 0..<fixture.layout.pieceCount { try fixture.writePiece(piece, to: storage) }
        let found = try Recheck(threads: 2).verify(
            layout: fixture.layout, pieceHashes: try fixture.pieceHashes(in: scratch), directory: scratch.path)
        #expect(found.isComplete)
    }

    @Test func needsVersionOneHashes() throws {
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100)])
        #expect(throws: StorageError.self) {
            try Recheck().verify(layout: fixture.layout, pieceHashes: [], directory: "/nonexistent")
        }
    }
}
