import Foundation
import Testing

/// `shoal create` then `shoal info --json`: the torrent lists exactly the tree's files with their
/// sizes (empty and hidden files included, empty folders left out), in mktorrent's order, laid
/// end to end.
@Suite struct RoundTripTests {
    static func expectListsTree(
        _ info: ShoalInfo, _ tree: FileTree, name: String, pieceLength: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let files = info.files ?? []
        let expected = tree.sortedFiles
        #expect(files.map(\.path) == expected.map { "\(name)/\($0.relativePath)" }, sourceLocation: sourceLocation)
        #expect(files.map(\.length) == expected.map { Int64($0.size) }, sourceLocation: sourceLocation)
        var offset: Int64 = 0
        for file in files {
            #expect(file.offset == offset, "\(file.path)", sourceLocation: sourceLocation)
            #expect(!file.padding, sourceLocation: sourceLocation)
            #expect(file.attributes == nil, "\(file.path)", sourceLocation: sourceLocation)
            offset += file.length
        }
        let total = Int64(tree.totalSize)
        #expect(info.totalSize == total, sourceLocation: sourceLocation)
        #expect(info.name == name, sourceLocation: sourceLocation)
        #expect(info.pieceLength == pieceLength, sourceLocation: sourceLocation)
        let pieces = Int((total + Int64(pieceLength) - 1) / Int64(pieceLength))
        #expect(info.pieceCount == pieces, sourceLocation: sourceLocation)
        #expect(info.metaVersion == 1, sourceLocation: sourceLocation)
        #expect(info.infoHashV1?.count == 40, sourceLocation: sourceLocation)
        #expect(info.infoHashV2 == nil, sourceLocation: sourceLocation)
        #expect(info.v2Files == nil, sourceLocation: sourceLocation)
        #expect(info.warnings == nil, sourceLocation: sourceLocation)
        #expect(info.magnet.hasPrefix("magnet:?xt=urn:btih:\(info.infoHashV1 ?? "-")"), sourceLocation: sourceLocation)
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func randomTree(seed: UInt64) async throws {
        let tree = FileTree.random(seed: 900 + seed, style: .wide)
        let pieceLength = 16 << (seed % 4)
        try await Interop.withTemporaryDirectory { directory in
            let name = "round trip \(seed)"
            let root = directory.appendingPathComponent(name)
            try tree.write(to: root)
            let torrent = directory.appendingPathComponent("out.torrent")
            let created = try await Interop.shoal(
                ["create", root.path, "-o", torrent.path, "--no-date", "--piece-length", "\(pieceLength << 10)"])
            #expect(created.succeeded, "\(created.summary)")
            #expect(created.stderr.isEmpty)
            let info = try await Interop.shoalInfo(torrent.path)
            Self.expectListsTree(info, tree, name: name, pieceLength: pieceLength << 10)
            // What `create` prints is what `info` reads.
            #expect(created.stdoutText.contains("Info-hash: \(info.infoHashV1 ?? "-")"))
            // --no-date makes the same file every time.
            let again = directory.appendingPathComponent("again.torrent")
            try await Interop.shoalCreate(root, output: again, ["--piece-length", "\(pieceLength << 10)"])
            #expect(try Data(contentsOf: again) == Data(contentsOf: torrent))
        }
    }

    @Test func emptyAndHiddenFilesAreKept() async throws {
        let tree = FileTree([
            ("empty", 0),
            (".hidden", 3_000),
            ("dir/.also hidden", 0),
            ("dir/sub/data", 50_000),
            ("z", 1),
        ], emptyDirectories: ["empty dir", "dir/nothing"])
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("kept")
            try tree.write(to: root)
            let torrent = directory.appendingPathComponent("out.torrent")
            try await Interop.shoalCreate(root, output: torrent, ["--piece-length", "16384"])
            let info = try await Interop.shoalInfo(torrent.path)
            Self.expectListsTree(info, tree, name: "kept", pieceLength: 16384)
            #expect(info.files?.map(\.path) == [
                "kept/.hidden", "kept/dir/.also hidden", "kept/dir/sub/data", "kept/empty", "kept/z",
            ])
        }
    }

    @Test func singleFile() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("only one.bin")
            try FileTree.contents(size: 100_001, seed: 3).write(to: file)
            let torrent = directory.appendingPathComponent("out.torrent")
            try await Interop.shoalCreate(file, output: torrent, ["--piece-length", "32768"])
            let info = try await Interop.shoalInfo(torrent.path)
            #expect(info.name == "only one.bin")
            #expect(info.files == [ShoalInfo.File(path: "only one.bin", length: 100_001, offset: 0, padding: false)])
            #expect(info.totalSize == 100_001)
            #expect(info.pieceCount == 4)
        }
    }

    /// The options of `create` come back out of `info`.
    @Test func optionsComeBack() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("content")
            try FileTree([("a", 20_000), ("b/c", 30_000)]).write(to: root)
            let torrent = directory.appendingPathComponent("out.torrent")
            try await Interop.shoalCreate(root, output: torrent, [
                "--piece-length", "16384", "--private", "--source", "SRC", "--comment", "a comment ✓",
                "--name", "Renamed", "--tracker", "http://127.0.0.1:1/a,http://127.0.0.1:2/b",
                "--tracker", "udp://127.0.0.1:3", "--web-seed", "http://127.0.0.1:4/seed/",
            ])
            let info = try await Interop.shoalInfo(torrent.path)
            #expect(info.name == "Renamed")
            #expect(info.files?.map(\.path) == ["Renamed/a", "Renamed/b/c"])
            #expect(info.private == true)
            #expect(info.source == "SRC")
            #expect(info.comment == "a comment ✓")
            #expect(info.trackers == [["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"], ["udp://127.0.0.1:3"]])
            #expect(info.webSeeds == ["http://127.0.0.1:4/seed/"])
        }
    }
}
