import Dispatch
import Foundation
import ShoalCore
import ShoalTestSupport
import Synchronization
import Testing

@testable import ShoalStorage

/// Pieces of 32 KiB over: a, an empty file, dir/b, padding to a piece boundary (BEP 47), c, then d, e, another
/// empty file and f, so that piece 4 spans c, d, e and f. 175 544 bytes: five pieces and a short sixth.
let mixedTorrent = TorrentFixture(
    pieceLength: 32768,
    files: [
        .init(name: "a", length: 10000), .init(name: "empty1", length: 0), .init(name: "dir/b", length: 30000),
        .init(name: ".pad/25536", length: 25536, padding: true), .init(name: "c", length: 70000),
        .init(name: "d", length: 5), .init(name: "e", length: 3), .init(name: "empty2", length: 0),
        .init(name: "f", length: 40000),
    ])

@Suite("PieceStorage")
struct PieceStorageTests {
    @Test func fixtureIsWhatTheTestsNeed() {
        let layout = mixedTorrent.layout
        #expect(layout.pieceCount == 6)
        #expect(layout.length(ofPiece: 5) == 175_544 - 5 * 32768)
        #expect(layout.fileIndices(inPiece: 4) == 4..<9)
        #expect(layout.spans(piece: 4, offset: 0, length: 32768).count == 4)
    }

    /// Every block written in a random order; then every block read back, every piece hashed, and every
    /// file on disk exactly its bytes. Padding was sent as garbage and never reached the disk.
    @Test func outOfOrderWritesReadBackAndHash() throws {
        let scratch = try ScratchDirectory()
        let fixture = mixedTorrent
        let layout = fixture.layout
        let storage = PieceStorage(layout: layout, directory: scratch.at("downloads"))
        var blocks = (0..<layout.pieceCount).flatMap { piece in (0..<layout.blockCount(ofPiece: piece)).map { (piece, $0) } }
        var generator = SeededGenerator(seed: 3)
        blocks.shuffle(using: &generator)
        for (piece, block) in blocks {
            try fixture.writeBlock(block, of: piece, to: storage)
        }

        let hashes = try fixture.pieceHashes(in: scratch)
        for piece in 0..<layout.pieceCount {
            #expect(try read(storage, piece: piece, length: layout.length(ofPiece: piece)) == fixture.bytes(piece: piece))
            #expect(try read(storage, piece: piece, offset: 7, length: 100) == fixture.bytes(piece: piece, offset: 7, length: 100))
            #expect(try storage.hashPiece(piece) == digest(hashes, piece), "piece \(piece)")
        }
        for (index, file) in layout.files.enumerated() where file.length > 0 && !file.isPadding {
            #expect(fileBytes(storage.path(ofFile: index)) == fixture.bytes(ofFile: index), "\(file.path)")
        }
        #expect(!fileExists(storage.path(ofFile: 3)), "padding is never written")
        #expect(!fileExists(scratch.at("downloads/t/.pad")))
        #expect(!fileExists(storage.path(ofFile: 1)) && !fileExists(storage.path(ofFile: 7)), "empty files need no piece")

        try storage.createEmptyFiles { $0 != 7 }
        #expect(fileBytes(storage.path(ofFile: 1)) == [])
        #expect(!fileExists(storage.path(ofFile: 7)))
        try storage.sync()
    }

    /// Nothing written yet reads as zeros: files that do not exist (not even the download directory), and
    /// the parts of a file not written. A write creates a sparse file: nothing is allocated for the hole.
    @Test func unwrittenRangesReadAsZerosAndFilesAreSparse() throws {
        let scratch = try ScratchDirectory()
        let big = TorrentFixture(pieceLength: 1 << 20, files: [.init(name: "big", length: 8 << 20)])
        let storage = PieceStorage(layout: big.layout, directory: scratch.at("not-yet"))
        #expect(try read(storage, piece: 3, length: 1 << 20) == [UInt8](repeating: 0, count: 1 << 20))
        #expect(!fileExists(scratch.at("not-yet")), "reading creates nothing")

        try big.writeBlock(63, of: 7, to: storage)  // The file's last block.
        try big.writeBlock(2, of: 0, to: storage)
        let path = storage.path(ofFile: 0)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_size == 8 << 20)
        #expect(Int(info.st_blocks) * 512 < 1 << 20, "a sparse file, not preallocated")
        #expect(try read(storage, piece: 0, length: 16384 * 3) == [UInt8](repeating: 0, count: 32768) + big.bytes(piece: 0, offset: 32768, length: 16384))
        #expect(try read(storage, piece: 7, offset: (1 << 20) - 16384, length: 16384) == big.bytes(piece: 7, offset: (1 << 20) - 16384))

        // A file that grows as written: reading past its end gives zeros, not an error.
        let small = TorrentFixture(pieceLength: 32768, files: [.init(name: "s", length: 60000)])
        let growing = PieceStorage(layout: small.layout, directory: scratch.at("growing"))
        try small.writeBlock(0, of: 0, to: growing)
        #expect(try read(growing, piece: 0, offset: 16000, length: 1000) == small.bytes(piece: 0, offset: 16000, length: 384) + [UInt8](repeating: 0, count: 616))
    }

    /// A piece over the 4 MiB a hash reads at once is read and hashed in chunks, across a file boundary.
    @Test func largePiecesHashInChunks() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(
            pieceLength: (4 << 20) + (256 << 10), files: [.init(name: "x", length: 3 << 20), .init(name: "y", length: (3 << 20) / 2)])
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        for piece in 0..<fixture.layout.pieceCount { try fixture.writePiece(piece, to: storage) }
        let hashes = try fixture.pieceHashes(in: scratch)
        #expect(try storage.hashPiece(0) == digest(hashes, 0))
        #expect(try storage.hashPiece(1) == digest(hashes, 1))
        #expect(throws: StorageError.self) { try storage.hashPiece(2) }
    }

    /// More files than descriptors: the cache never holds more than its limit, and every file still reads
    /// back right after its descriptor was closed and reopened. Then the same from four threads at once.
    @Test func descriptorCacheStaysWithinItsLimit() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(
            pieceLength: 16384, files: (0..<40).map { .init(name: "f\($0)", length: 1000 + Int64($0) * 37) })
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.at("one"), maxOpenFiles: 8)
        for piece in 0..<fixture.layout.pieceCount {
            try fixture.writePiece(piece, to: storage)
            #expect(storage.openFileCount <= 8)
        }
        for piece in (0..<fixture.layout.pieceCount).reversed() {
            #expect(try read(storage, piece: piece, length: fixture.layout.length(ofPiece: piece)) == fixture.bytes(piece: piece))
            #expect(storage.openFileCount <= 8)
        }
        #expect(storage.openFileCount == 8)
        storage.closeAll()
        #expect(storage.openFileCount == 0)

        // Four threads writing disjoint blocks through a cache of three: descriptors are evicted while
        // others use them.
        let shared = PieceStorage(layout: fixture.layout, directory: scratch.at("threads"), maxOpenFiles: 3)
        let pieces = fixture.layout.pieceCount
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for piece in stride(from: worker, to: pieces, by: 4) {
                do {
                    try fixture.writePiece(piece, to: shared)
                } catch {
                    failures.withLock { $0.append("write \(piece): \(error)") }
                }
            }
        }
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for piece in stride(from: worker, to: pieces, by: 4) {
                let bytes = try? read(shared, piece: piece, length: fixture.layout.length(ofPiece: piece))
                if bytes != fixture.bytes(piece: piece) { failures.withLock { $0.append("read \(piece)") } }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(shared.openFileCount <= 3)
        for index in fixture.layout.files.indices {
            #expect(fileBytes(shared.path(ofFile: index)) == fixture.bytes(ofFile: index))
        }
    }

    /// A file already there is used as it is: read (through a read-only descriptor, reopened for writing
    /// when written), never truncated, never extended past the torrent's length.
    @Test func existingFilesAreNeitherTruncatedNorExtended() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "x", length: 20000), .init(name: "y", length: 100)])
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        try FileManager.default.createDirectory(atPath: scratch.at("t"), withIntermediateDirectories: true)
        let longer = fixture.bytes(ofFile: 0) + [1, 2, 3]
        try Data(longer).write(to: URL(fileURLWithPath: scratch.at("t/x")))
        #expect(try read(storage, piece: 0, length: 16384) == fixture.bytes(piece: 0))
        try fixture.writePiece(1, to: storage)
        #expect(fileBytes(scratch.at("t/x")) == longer)
        #expect(fileBytes(scratch.at("t/y")) == fixture.bytes(ofFile: 1))

        #expect(throws: StorageError.self) {
            try [UInt8](repeating: 1, count: 16384).withUnsafeBytes { try storage.write(piece: 1, offset: 0, bytes: $0) }
        }
        do {
            _ = try read(storage, piece: 2, length: 1)
            Issue.record("read past the last piece")
        } catch let error as StorageError {
            #expect(error.condition == .invalidArgument)
        }
        #expect(fileBytes(scratch.at("t/y")) == fixture.bytes(ofFile: 1))
    }

    /// A file the storage has seen, removed under it: the next open reports it missing, for writes (no new
    /// empty file is quietly started) and for reads (no zeros instead of verified data).
    @Test func fileRemovedUnderTheStorageIsReported() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "gone", length: 30000)])
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        try fixture.writePiece(0, to: storage)
        storage.closeAll()
        try FileManager.default.removeItem(atPath: storage.path(ofFile: 0))
        for attempt in ["write", "read"] {
            do {
                if attempt == "write" { try fixture.writePiece(1, to: storage) } else { _ = try read(storage, piece: 0, length: 10) }
                Issue.record("\(attempt) succeeded")
            } catch let error as StorageError {
                #expect(error.condition == .missing, "\(attempt)")
                #expect(error.code == .fileNotFound)
                #expect(error.path == storage.path(ofFile: 0))
            }
        }
        #expect(!fileExists(storage.path(ofFile: 0)))
    }

    /// Hostile: links planted in the download directory where the torrent's file or directory goes, pointing
    /// outside. Nothing is written through them, nothing is read through them, nothing is created at their
    /// targets.
    @Test func symbolicLinksAreNeverFollowed() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100), .init(name: "sub/b", length: 100)])
        let downloads = scratch.at("downloads")
        try FileManager.default.createDirectory(atPath: downloads + "/t", withIntermediateDirectories: true)
        let victim = scratch.at("victim")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: victim))
        let outsideDirectory = scratch.at("outside")
        try FileManager.default.createDirectory(atPath: outsideDirectory, withIntermediateDirectories: true)

        func expectRefused(_ body: () throws -> Void) {
            do {
                try body()
                Issue.record("went through a link")
            } catch let error as StorageError {
                #expect(error.condition == .pathConflict)
                #expect(error.errno == ELOOP)
            } catch {
                Issue.record("\(error)")
            }
        }

        // A link at a file's place, to an existing file outside.
        #expect(symlink(victim, downloads + "/t/a") == 0)
        // A link at a directory's place, to a directory outside.
        #expect(symlink(outsideDirectory, downloads + "/t/sub") == 0)
        let storage = PieceStorage(layout: fixture.layout, directory: downloads)
        expectRefused { try fixture.writePiece(0, to: storage) }
        expectRefused { _ = try read(storage, piece: 0, length: 10) }
        expectRefused { _ = try storage.hashPiece(0) }
        #expect(fileBytes(victim) == [1, 2, 3])
        #expect(try FileManager.default.contentsOfDirectory(atPath: outsideDirectory).isEmpty)

        // A dangling link: O_CREAT would create its target.
        try FileManager.default.removeItem(atPath: downloads + "/t/a")
        #expect(symlink(scratch.at("created-outside"), downloads + "/t/a") == 0)
        expectRefused { try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: downloads)) }
        #expect(!fileExists(scratch.at("created-outside")))

        // The top directory itself a link.
        try FileManager.default.removeItem(atPath: downloads + "/t")
        #expect(symlink(outsideDirectory, downloads + "/t") == 0)
        expectRefused { try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: downloads)) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outsideDirectory).isEmpty)
    }

    /// A FIFO at a file's place: refused at once (a plain open would wait for a writer forever).
    @Test func specialFilesAreRefused() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100)])
        try FileManager.default.createDirectory(atPath: scratch.at("t"), withIntermediateDirectories: true)
        #expect(mkfifo(scratch.at("t/a"), 0o644) == 0)
        let storage = PieceStorage(layout: fixture.layout, directory: scratch.path)
        for attempt in 0..<2 {
            do {
                if attempt == 0 { try fixture.writePiece(0, to: storage) } else { _ = try read(storage, piece: 0, length: 1) }
                Issue.record("used a FIFO")
            } catch let error as StorageError {
                #expect(error.condition == .pathConflict)
            }
        }
        // A directory where the file goes.
        try FileManager.default.removeItem(atPath: scratch.at("t/a"))
        try FileManager.default.createDirectory(atPath: scratch.at("t/a"), withIntermediateDirectories: true)
        do {
            try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: scratch.path))
            Issue.record("wrote to a directory")
        } catch let error as StorageError {
            #expect(error.condition == .pathConflict)
        }
    }

    /// What can be provoked of the disk errors, as root too: a file where a directory must go (ENOTDIR), a
    /// directory no one may create files in (sysfs refuses even root: EACCES, EPERM).
    @Test func diskErrorsCarryPathAndCondition() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100)])
        try Data([0]).write(to: URL(fileURLWithPath: scratch.at("regular")))

        // The download directory under a regular file.
        do {
            try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: scratch.at("regular/downloads")))
            Issue.record("wrote under a regular file")
        } catch let error as StorageError {
            #expect(error.errno == ENOTDIR)
            #expect(error.condition == .pathConflict)
            #expect(error.path?.hasPrefix(scratch.at("regular")) == true)
        }
        // The torrent's top directory is a regular file.
        try Data([0]).write(to: URL(fileURLWithPath: scratch.at("t")))
        do {
            try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: scratch.path))
            Issue.record("wrote under a regular file")
        } catch let error as StorageError {
            #expect(error.errno == ENOTDIR)
            #expect(error.condition == .pathConflict)
            #expect(error.path == scratch.at("t"))
        }
        // Reading there is not "not written yet" either: something is in the way.
        #expect(throws: StorageError.self) {
            _ = try read(PieceStorage(layout: fixture.layout, directory: scratch.path), piece: 0, length: 1)
        }

        if FileManager.default.fileExists(atPath: "/sys/kernel") {
            for directory in ["/sys", "/sys/shoal-test-\(UUID().uuidString)"] {
                do {
                    try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: directory))
                    Issue.record("wrote into \(directory)")
                } catch let error as StorageError {
                    #expect(error.condition == .permissionDenied, "\(error)")
                    #expect(error.path?.hasPrefix("/sys/") == true)
                }
            }
        }
    }

    /// A read-only directory: root writes anyway, so this runs only as another user.
    @Test(.enabled(if: geteuid() != 0, "root may write into a read-only directory"))
    func readOnlyDirectoryIsPermissionDenied() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 16384, files: [.init(name: "a", length: 100)])
        try FileManager.default.createDirectory(atPath: scratch.at("ro"), withIntermediateDirectories: true)
        #expect(chmod(scratch.at("ro"), 0o555) == 0)
        defer { chmod(scratch.at("ro"), 0o755) }
        do {
            try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: scratch.at("ro")))
            Issue.record("wrote into a read-only directory")
        } catch let error as StorageError {
            #expect(error.condition == .permissionDenied)
            #expect(error.code == .permissionDenied)
        }
    }

    /// A full disk and a read-only file system, on small tmpfs mounts: only where mounting is allowed (root),
    /// otherwise the test does nothing.
    @Test func fullDiskAndReadOnlyFileSystem() throws {
        let scratch = try ScratchDirectory()
        let fixture = TorrentFixture(pieceLength: 32768, files: [.init(name: "a", length: 200_000)])
        let full = scratch.at("full")
        let readOnly = scratch.at("read-only")
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        guard mount("tmpfs", full, "tmpfs", 0, "size=64k") == 0 else { return }
        // Detached even while a descriptor is still open in a storage not yet released.
        defer { umount2(full, Int32(MNT_DETACH)) }
        guard mount("tmpfs", readOnly, "tmpfs", UInt(MS_RDONLY), "size=64k") == 0 else { return }
        defer { umount2(readOnly, Int32(MNT_DETACH)) }

        let storage = PieceStorage(layout: fixture.layout, directory: full)
        var error: StorageError?
        for piece in 0..<fixture.layout.pieceCount where error == nil {
            do {
                try fixture.writePiece(piece, to: storage)
            } catch let caught as StorageError {
                error = caught
            }
        }
        #expect(error?.condition == .noSpace)
        #expect(error?.errno == ENOSPC)
        #expect(error?.path == storage.path(ofFile: 0))
        // What was written before the disk filled up is still there.
        #expect(try read(storage, piece: 0, length: 32768) == fixture.bytes(piece: 0))
        storage.closeAll()

        do {
            try fixture.writePiece(0, to: PieceStorage(layout: fixture.layout, directory: readOnly))
            Issue.record("wrote to a read-only file system")
        } catch let caught as StorageError {
            #expect(caught.condition == .readOnly)
        }
    }

    @Test func conditionsFollowErrorNumbers() {
        func condition(_ number: Int32) -> StorageError.Condition {
            StorageError.system(number, operation: "write", path: "/x").condition
        }
        #expect(condition(ENOSPC) == .noSpace)
        #expect(condition(EDQUOT) == .noSpace)
        #expect(condition(EROFS) == .readOnly)
        #expect(condition(EACCES) == .permissionDenied)
        #expect(condition(EPERM) == .permissionDenied)
        #expect(condition(ENOENT) == .missing)
        #expect(condition(ENOTDIR) == .pathConflict)
        #expect(condition(EISDIR) == .pathConflict)
        #expect(condition(EIO) == .ioError)
        #expect(StorageError(code: .fileTooShort, message: "").condition == .fileTooShort)
        #expect(StorageError(code: .invalidArgument, message: "").condition == .invalidArgument)
    }
}
