import Foundation
@testable import ShoalStorage
import Synchronization
import Testing

/// A directory of files for one test, removed when the test ends.
private final class ScratchTree {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-piecehasher-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `bytes` to a new file called `name`; returns it as the hasher takes it.
    func file(_ name: String, _ bytes: [UInt8]) throws -> HashedFile {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return HashedFile(path: url.path, length: Int64(bytes.count))
    }

    func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }
}

/// Bytes that differ from file to file and from offset to offset (a linear congruential generator).
private func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

/// The `pieces` string the straightforward way: concatenate everything, SHA-1 each piece (with the
/// reference SHA-1 below, independent of the one under test).
private func referencePieces(_ contents: [[UInt8]], pieceLength: Int) -> [UInt8] {
    let all = contents.flatMap { $0 }
    var pieces: [UInt8] = []
    var start = 0
    while start < all.count {
        let end = min(start + pieceLength, all.count)
        pieces += ReferenceSHA1.hash(all[start..<end])
        start = end
    }
    return pieces
}

/// SHA-1 as FIPS 180-4 §6.1 spells it, slowly: the test's independent reference.
private enum ReferenceSHA1 {
    static func hash(_ message: ArraySlice<UInt8>) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var bytes = Array(message)
        let bitLength = UInt64(bytes.count) * 8
        bytes.append(0x80)
        while bytes.count % 64 != 56 { bytes.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        func rotate(_ x: UInt32, _ n: UInt32) -> UInt32 { x << n | x >> (32 - n) }
        var w = [UInt32](repeating: 0, count: 80)
        for block in stride(from: 0, to: bytes.count, by: 64) {
            for t in 0..<16 {
                w[t] = (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[block + 4 * t + $1]) }
            }
            for t in 16..<80 { w[t] = rotate(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1) }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for t in 0..<80 {
                let (f, k): (UInt32, UInt32) =
                    switch t {
                    case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
                    case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
                    case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                    default: (b ^ c ^ d, 0xCA62_C1D6)
                    }
                let temp = rotate(a, 5) &+ f &+ e &+ k &+ w[t]
                (e, d, c, b, a) = (d, c, rotate(b, 30), a, temp)
            }
            h[0] &+= a
            h[1] &+= b
            h[2] &+= c
            h[3] &+= d
            h[4] &+= e
        }
        return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - 8 * $0)) } }
    }
}

private let allMethods: [PieceHasher.ReadMethod] = [.mappedMemory, .read]

@Suite("PieceHasher")
struct PieceHasherTests {
    @Test func referenceSHA1KnownAnswers() {
        #expect(ReferenceSHA1.hash(ArraySlice("abc".utf8)) == hexBytes("a9993e364706816aba3e25717850c26c9cd0d89d"))
        #expect(ReferenceSHA1.hash([]) == hexBytes("da39a3ee5e6b4b0d3255bfef95601890afd80709"))
    }

    @Test func singleSmallFileIsOneShortPiece() throws {
        let tree = try ScratchTree()
        let file = try tree.file("abc", Array("abc".utf8))
        for method in allMethods {
            let pieces = try PieceHasher(pieceLength: 16384, threads: 2, readMethod: method).hashPieces(of: [file])
            #expect(pieces == hexBytes("a9993e364706816aba3e25717850c26c9cd0d89d"))
        }
    }

    /// Empty files at the start, middle and end; a file smaller than a piece; pieces that span three
    /// files; a last short piece. Every thread count and both read methods agree with the reference.
    @Test func smallTreeMatchesReference() throws {
        let tree = try ScratchTree()
        let sizes = [0, 100, 0, 3000, 5000, 10, 3 * 4096 + 5, 0, 1, 4096, 0]
        let contents = sizes.enumerated().map { pattern($1, seed: UInt64($0)) }
        let files = try contents.enumerated().map { try tree.file("f\($0)", $1) }
        let pieceLength = 4096
        let expected = referencePieces(contents, pieceLength: pieceLength)
        // 100 + 3000 + 5000 bytes: the first piece spans files 1, 3 and 4; 24500 bytes make five pieces
        // and a short sixth.
        #expect(expected.count == 20 * 6)
        for method in allMethods {
            for threads in [1, 2, 3, 8] {
                let hasher = PieceHasher(pieceLength: pieceLength, threads: threads, readMethod: method)
                #expect(try hasher.hashPieces(of: files) == expected, "\(method), \(threads) threads")
            }
        }
    }

    /// Files of several MiB, so that the mapping path is taken (short stretches are read with pread),
    /// with pieces across file boundaries and many batches per worker.
    @Test func largerTreeMatchesReference() throws {
        let tree = try ScratchTree()
        let sizes = [(5 << 20) / 4, 0, (1 << 20) + 7, 100 << 10, (3 << 20) / 2, 1]
        let contents = sizes.enumerated().map { pattern($1, seed: UInt64(100 + $0)) }
        let files = try contents.enumerated().map { try tree.file("g\($0)", $1) }
        for pieceLength in [16384, 3 << 20] {
            let expected = referencePieces(contents, pieceLength: pieceLength)
            for method in allMethods {
                for threads in [1, 2, 5] {
                    let hasher = PieceHasher(pieceLength: pieceLength, threads: threads, readMethod: method)
                    #expect(
                        try hasher.hashPieces(of: files) == expected,
                        "piece length \(pieceLength), \(method), \(threads) threads")
                }
            }
        }
    }

    /// Bytes past a file's listed length are not part of the torrent.
    @Test func longerFileIsReadOnlyToItsLength() throws {
        let tree = try ScratchTree()
        let bytes = pattern(10000, seed: 7)
        var file = try tree.file("long", bytes)
        file.length = 6000
        let expected = referencePieces([Array(bytes.prefix(6000))], pieceLength: 4096)
        for method in allMethods {
            #expect(try PieceHasher(pieceLength: 4096, readMethod: method).hashPieces(of: [file]) == expected)
        }
    }

    /// A character device: not mappable as a regular file, its size meaningless; read all the same.
    @Test func specialFileIsRead() throws {
        let length = (2 << 20) + 3
        let expected = referencePieces([[UInt8](repeating: 0, count: length)], pieceLength: 1 << 20)
        for method in allMethods {
            let pieces = try PieceHasher(pieceLength: 1 << 20, threads: 2, readMethod: method)
                .hashPieces(of: [HashedFile(path: "/dev/zero", length: Int64(length))])
            #expect(pieces == expected)
        }
    }

    @Test func emptyContentHasNoPieces() throws {
        let tree = try ScratchTree()
        let empty = try tree.file("empty", [])
        let hasher = PieceHasher(pieceLength: 16384)
        #expect(try hasher.hashPieces(of: []) == [])
        #expect(try hasher.hashPieces(of: [empty, empty]) == [])
    }

    @Test func progressRisesToTheTotal() throws {
        let tree = try ScratchTree()
        let contents = [pattern(3 << 20, seed: 1), pattern(12345, seed: 2)]
        let files = try contents.enumerated().map { try tree.file("p\($0)", $1) }
        let reports = Mutex<[Int64]>([])
        _ = try PieceHasher(pieceLength: 16384, threads: 2).hashPieces(of: files) { total in
            reports.withLock { $0.append(total) }
        }
        let seen = reports.withLock { $0 }
        #expect(seen.count > 1)
        #expect(seen == seen.sorted())
        #expect(seen.last == Int64((3 << 20) + 12345))
    }

    @Test func missingFileIsReported() throws {
        let tree = try ScratchTree()
        let present = try tree.file("present", pattern(5000, seed: 3))
        let missing = HashedFile(path: tree.path("missing"), length: 10)
        #expect {
            try PieceHasher(pieceLength: 4096).hashPieces(of: [present, missing])
        } throws: { error in
            let error = try #require(error as? StorageError)
            return error.code == .fileNotFound && error.path == missing.path
        }
    }

    /// Even an empty file must exist.
    @Test func missingEmptyFileIsReported() throws {
        let tree = try ScratchTree()
        let missing = HashedFile(path: tree.path("missing"), length: 0)
        #expect {
            try PieceHasher(pieceLength: 4096).hashPieces(of: [missing])
        } throws: { error in
            (error as? StorageError)?.code == .fileNotFound
        }
    }

    @Test func shortFileIsReported() throws {
        let tree = try ScratchTree()
        var short = try tree.file("short", pattern(5000, seed: 4))
        short.length = 5001
        for method in allMethods {
            #expect {
                try PieceHasher(pieceLength: 4096, readMethod: method).hashPieces(of: [short])
            } throws: { error in
                let error = try #require(error as? StorageError)
                return error.code == .fileTooShort && error.path == short.path
            }
        }
    }

    /// A file that ends early while being read (checked before hashing, so met here only through the
    /// reader itself) is `fileTooShort`, whichever way it is read.
    @Test func readerReportsEarlyEnd() throws {
        let tree = try ScratchTree()
        let file = try tree.file("ends-early", pattern(3 << 20, seed: 6))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        for map in [true, false] {
            var seen = 0
            #expect {
                try ContentFile(path: file.path).read((1 << 20)..<(4 << 20), map: map, buffer: buffer) {
                    seen += $0.count
                }
            } throws: { error in
                (error as? StorageError)?.code == .fileTooShort
            }
            #expect(seen == (map ? 0 : 2 << 20), "map: \(map)")
        }
    }

    @Test func directoryIsReported() throws {
        let tree = try ScratchTree()
        #expect {
            try PieceHasher(pieceLength: 4096).hashPieces(of: [HashedFile(path: tree.directory.path, length: 1)])
        } throws: { error in
            (error as? StorageError)?.code == .isDirectory
        }
    }

    @Test(.enabled(if: geteuid() != 0, "root reads any file"))
    func unreadableFileIsReported() throws {
        let tree = try ScratchTree()
        let file = try tree.file("secret", pattern(100, seed: 5))
        #expect(chmod(file.path, 0) == 0)
        #expect {
            try PieceHasher(pieceLength: 4096).hashPieces(of: [file])
        } throws: { error in
            (error as? StorageError)?.code == .permissionDenied
        }
    }

    @Test func invalidArgumentsAreReported() throws {
        let tree = try ScratchTree()
        let file = try tree.file("x", [1, 2, 3])
        #expect(throws: StorageError.self) { try PieceHasher(pieceLength: 0).hashPieces(of: [file]) }
        #expect(throws: StorageError.self) {
            try PieceHasher(pieceLength: 4096).hashPieces(of: [HashedFile(path: file.path, length: -1)])
        }
    }
}

private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map {
        UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
    }
}
