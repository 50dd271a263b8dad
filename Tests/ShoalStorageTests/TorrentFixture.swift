import Foundation
import ShoalCore
@testable import ShoalStorage

/// A directory for one test, removed with everything in it when the test is done.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "shoal-storage-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func at(_ relative: String) -> String { path + "/" + relative }
}

/// A torrent's layout and the bytes of its piece space (zeros on padding), for storage tests.
struct TorrentFixture {
    /// One file: its name under the top directory `t`, its length, whether it is padding (BEP 47).
    struct File {
        var name: String
        var length: Int64
        var padding = false
    }

    let layout: FileLayout
    /// The piece space: file contents in order, zeros for padding.
    let content: [UInt8]

    init(pieceLength: Int, files: [File], seed: UInt64 = 1) {
        var offset: Int64 = 0
        let placed = files.map { file in
            defer { offset += file.length }
            return TorrentFile(
                path: try! TorrentPath(validating: ["t"] + file.name.split(separator: "/").map(String.init)),
                length: file.length, offset: offset, attributes: file.padding ? .padding : [])
        }
        layout = FileLayout(pieceLength: pieceLength, files: placed)
        var content = sampleBytes(Int(offset), seed: seed)
        for file in placed where file.isPadding {
            for index in Int(file.offset)..<Int(file.offset + file.length) { content[index] = 0 }
        }
        self.content = content
    }

    /// The bytes of a range of piece `piece`.
    func bytes(piece: Int, offset: Int = 0, length: Int? = nil) -> [UInt8] {
        let start = Int(layout.range(ofPiece: piece).lowerBound) + offset
        return Array(content[start..<(start + (length ?? layout.length(ofPiece: piece) - offset))])
    }

    /// The expected contents of file `index`.
    func bytes(ofFile index: Int) -> [UInt8] {
        let file = layout.files[index]
        return Array(content[Int(file.offset)..<Int(file.offset + file.length)])
    }

    /// The `pieces` string, computed by the piece hasher over the piece space written out as one file
    /// (independent of the storage under test).
    func pieceHashes(in scratch: ScratchDirectory) throws -> [UInt8] {
        let path = scratch.at("reference-\(UUID().uuidString)")
        try Data(content).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try PieceHasher(pieceLength: layout.pieceLength, threads: 1)
            .hashPieces(of: [HashedFile(path: path, length: Int64(content.count))])
    }

    /// Writes every block of piece `piece` to `storage` (padding bytes replaced by garbage: they must not
    /// reach the disk).
    func writePiece(_ piece: Int, to storage: PieceStorage) throws {
        for block in 0..<layout.blockCount(ofPiece: piece) {
            try writeBlock(block, of: piece, to: storage)
        }
    }

    func writeBlock(_ block: Int, of piece: Int, to storage: PieceStorage) throws {
        let offset = block * FileLayout.blockLength
        var bytes = self.bytes(piece: piece, offset: offset, length: layout.length(ofBlock: block, inPiece: piece))
        for span in layout.spans(piece: piece, offset: offset, length: bytes.count) where span.isPadding {
            for index in span.offsetInRange..<(span.offsetInRange + span.length) { bytes[index] = 0xEE }
        }
        try bytes.withUnsafeBytes { try storage.write(piece: piece, offset: offset, bytes: $0) }
    }
}

/// Reads `length` bytes of piece `piece` from `storage`.
func read(_ storage: PieceStorage, piece: Int, offset: Int = 0, length: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0xAA, count: length)
    try bytes.withUnsafeMutableBytes { try storage.read(piece: piece, offset: offset, length: length, into: $0) }
    return bytes
}

/// The bytes of a file on disk, nil if there is none.
func fileBytes(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}

func fileExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// Bytes that differ from offset to offset (a linear congruential generator, eight bytes a step).
func sampleBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { buffer in
        var index = 0
        while index < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var word = state
            for _ in 0..<min(8, count - index) {
                buffer[index] = UInt8(truncatingIfNeeded: word >> 56)
                word <<= 8
                index += 1
            }
        }
    }
    return bytes
}

/// The 20 bytes of piece `piece` in a `pieces` string.
func digest(_ pieces: [UInt8], _ piece: Int) -> Digest20 {
    Digest20(bytes: pieces[(piece * 20)..<(piece * 20 + 20)])!
}

/// Sets a file's modification time.
func setModificationTime(_ path: String, seconds: Int, nanoseconds: Int = 0) {
    var times = [
        timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds),
    ]
    _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
}
