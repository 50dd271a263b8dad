import ShoalCore
import Testing

@testable import ShoalStorage

@Suite("Torrent creator")
struct TorrentCreatorTests {
    static let sizes: [(total: Int64, pieceLength: Int)] = [
        (1, 16 << 10), (32 << 20, 16 << 10), ((32 << 20) + 1, 32 << 10),
        (1 << 30, 512 << 10), (4 << 30, 2 << 20), (1 << 50, 16 << 20),
    ]

    @Test(arguments: sizes)
    func choosesPieceLengthFromSize(total: Int64, expected: Int) {
        #expect(TorrentCreator.defaultPieceLength(for: total) == expected)
    }

    @Test func refusesPieceLengthsThatAreNotWholeBlocks() {
        for length in [0, 1000, 16383, 16385, 24 << 10, 2 << 30] {
            #expect(throws: StorageError.self, "\(length)") { try TorrentCreator.validate(pieceLength: length) }
        }
        for length in [16 << 10, 48 << 10, 1 << 20, 1 << 30] {
            #expect(throws: Never.self) { try TorrentCreator.validate(pieceLength: length) }
        }
    }

    @Test func createsATorrentThatReadsBack() throws {
        let tree = try TemporaryTree(files: ["b/x.bin": 40000, "a.txt": 5, "empty": 0])
        defer { tree.remove() }
        let options = TorrentCreator.Options(
            pieceLength: 16384, trackers: [["http://t1/a", "http://t2/a"], ["udp://t3:1"]], webSeeds: ["http://w/"],
            isPrivate: true, comment: "c", source: "S", name: "renamed", createdBy: "test", creationDate: 9, threads: 2)
        let metainfo = try TorrentCreator(options: options).create(from: tree.path)
        let read = try Metainfo(parsing: metainfo.encoded())
        let info = read.info
        #expect(info.name == "renamed")
        #expect(info.isDirectory && info.isPrivate && info.source == "S")
        #expect(info.files.map(\.path.string) == ["renamed/a.txt", "renamed/b/x.bin", "renamed/empty"])
        #expect(info.files.map(\.length) == [5, 40000, 0])
        #expect(info.pieceCount == 3)
        #expect(read.trackers == options.trackers)
        #expect(read.webSeeds == ["http://w/"])
        #expect(read.infoHashV1 == metainfo.infoHashV1)

        // Each piece hash is the SHA-1 of that piece of the concatenated files.
        let data = try tree.contents(of: ["a.txt", "b/x.bin", "empty"])
        for piece in 0..<info.pieceCount {
            let bytes = data[(piece * 16384)..<min(data.count, (piece + 1) * 16384)]
            #expect(info.pieceHash(piece) == InfoHash.v1(ofInfo: bytes).truncated)
        }
    }

    @Test func refusesContentWithNoBytes() throws {
        let tree = try TemporaryTree(files: ["empty1": 0, "empty2": 0])
        defer { tree.remove() }
        #expect(throws: StorageError.self) { try TorrentCreator(options: .init()).create(from: tree.path) }
    }

    @Test func reportsProgressUpToTheTotal() throws {
        let tree = try TemporaryTree(files: ["big": 300_000])
        defer { tree.remove() }
        let seen = ProgressRecorder()
        _ = try TorrentCreator(options: .init(pieceLength: 16384)).create(from: tree.path) { done, total in
            seen.record(done, total)
        }
        #expect(seen.last?.0 == 300_000 && seen.last?.1 == 300_000)
    }
}

import Synchronization

final class ProgressRecorder: Sendable {
    private let state = Mutex<(Int64, Int64)?>(nil)
    func record(_ done: Int64, _ total: Int64) { state.withLock { $0 = (done, total) } }
    var last: (Int64, Int64)? { state.withLock { $0 } }
}
