import Foundation
import ShoalCore
import ShoalStorage
import ShoalTestSupport

/// A small multi-file torrent made for one test: pseudo-random files under a scratch directory, the
/// metainfo made from them by ``TorrentCreator``, and directories for the peers that download it.
/// ``remove()`` deletes everything.
struct TestTorrent: Sendable {
    /// The scratch directory holding everything.
    let root: String
    /// The seed's download directory: it holds the torrent's top directory with every file.
    let seedDirectory: String
    let metainfo: Metainfo
    let layout: FileLayout
    let infoHash: Digest20
    /// The piece space: every file's bytes, in order.
    let content: [UInt8]

    var geometry: PieceGeometry { layout.geometry }
    var pieceCount: Int { layout.pieceCount }

    /// The torrent `name` with files of the given sizes (in order), in pieces of `pieceLength` bytes.
    init(
        name: String = "sample", files: [(name: String, length: Int)], pieceLength: Int = 32 << 10, seed: UInt64 = 1
    ) throws {
        root = NSTemporaryDirectory() + "shoal-nio-" + UUID().uuidString
        seedDirectory = root + "/seed"
        let top = seedDirectory + "/" + name
        try FileManager.default.createDirectory(atPath: top, withIntermediateDirectories: true)
        var random = SeededGenerator(seed: seed)
        var content: [UInt8] = []
        for file in files {
            let bytes = Self.randomBytes(file.length, using: &random)
            guard FileManager.default.createFile(atPath: top + "/" + file.name, contents: Data(bytes)) else {
                throw CocoaError(.fileWriteUnknown)
            }
            content += bytes
        }
        self.content = content
        metainfo = try TorrentCreator(options: .init(pieceLength: pieceLength, threads: 1)).create(from: top)
        layout = FileLayout(metainfo.info)
        infoHash = metainfo.infoHashV1!
    }

    /// The default torrent of these tests: three files, 2,000,001 bytes in 62 pieces of 32 KiB (the last
    /// one short, its last block short, and 2 spare bits in a bitfield).
    static func standard(seed: UInt64 = 1) throws -> TestTorrent {
        try TestTorrent(
            files: [("a.bin", 700_000), ("b.bin", 1_000_000), ("c.bin", 300_001)], pieceLength: 32 << 10, seed: seed)
    }

    /// A new empty download directory under the scratch directory.
    func emptyDirectory(_ name: String) throws -> String {
        let path = root + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The bytes of every file under `directory`, concatenated in the torrent's order (a missing file
    /// reads as nothing, so that it cannot compare equal).
    func downloadedContent(in directory: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for file in layout.files {
            let path = directory + "/" + file.path.components.joined(separator: "/")
            bytes += FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
        }
        return bytes
    }

    /// The true bytes of `block`, nil when the block is not inside the torrent.
    /// Whether the files in `directory` hold the content (a Bool, so that a failure does not diff megabytes).
    func isDownloaded(in directory: String) -> Bool {
        downloadedContent(in: directory) == content
    }

    func bytes(of block: Block) -> [UInt8]? {
        guard geometry.blockIndex(of: block) != nil else { return nil }
        let start = block.piece * geometry.pieceLength + block.offset
        return Array(content[start..<(start + block.length)])
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private static func randomBytes(_ count: Int, using random: inout SeededGenerator) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = random.next()
            for _ in 0..<min(8, count - index) {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }
}
