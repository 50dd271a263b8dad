import Foundation
import ShoalProcess
import Testing

/// `shoal create` must write the same info dictionary as mktorrent 1.1 (the same info-hash) for the
/// same content, piece length, private flag and source: same file order, same empty and hidden
/// files, same names byte for byte.
@Suite(.enabled(if: Interop.shouldRun(tool: .mktorrent)))
struct MktorrentInteropTests {
    /// Piece lengths every mktorrent takes (1.1 refuses 16 KiB: its range is 2^15 to 2^28).
    static let pieceLengths = [32 << 10, 256 << 10]

    // MARK: Running both

    /// `mktorrent -l log2(L) -a DEAD -o OUTPUT EXTRA PATH`; cancels the test when this mktorrent
    /// cannot make such a torrent (piece length out of its range).
    static func mktorrent(_ path: URL, output: URL, pieceLength: Int, _ extra: [String] = []) async throws {
        let executable = try Interop.require(.mktorrent)
        let log2 = pieceLength.trailingZeroBitCount
        let outcome = try await ExternalProcess.run(
            executable,
            ["-d", "-l", "\(log2)", "-a", Interop.deadTracker, "-o", output.path] + extra + [path.path],
            timeout: .seconds(60))
        if !outcome.succeeded && (outcome.stdoutText + outcome.stderr).contains("must be a number between") {
            try Test.cancel("this mktorrent does not take piece length 2^\(log2): \(outcome.stderr)")
        }
        guard outcome.succeeded else { throw ProcessError("mktorrent failed: \(outcome.summary)") }
    }

    /// Makes a torrent of `path` with both tools and expects the same info-hash and file list.
    @discardableResult
    static func expectAgreement(
        _ path: URL, pieceLength: Int, shoal shoalExtra: [String] = [], mktorrent mktorrentExtra: [String] = [],
        in directory: URL, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ShoalInfo {
        let theirs = directory.appendingPathComponent("mktorrent.torrent")
        try? FileManager.default.removeItem(at: theirs)
        try await mktorrent(path, output: theirs, pieceLength: pieceLength, mktorrentExtra)
        return try await expectShoalAgrees(
            with: theirs, path, pieceLength: pieceLength, shoal: shoalExtra, in: directory,
            sourceLocation: sourceLocation)
    }

    /// Makes a torrent of `path` with Shoal and expects the info-hash and file list of mktorrent's `reference`.
    @discardableResult
    static func expectShoalAgrees(
        with theirs: URL, _ path: URL, pieceLength: Int, shoal shoalExtra: [String] = [], in directory: URL,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ShoalInfo {
        let ours = directory.appendingPathComponent("shoal.torrent")
        try? FileManager.default.removeItem(at: ours)
        try await Interop.shoalCreate(path, output: ours, ["--piece-length", "\(pieceLength)"] + shoalExtra)
        let shoal = try await Interop.shoalInfo(ours.path)
        let reference = try await Interop.shoalInfo(theirs.path)
        #expect(shoal.infoHashV1 != nil, sourceLocation: sourceLocation)
        #expect(
            shoal.infoHashV1 == reference.infoHashV1,
            "info-hash differs from mktorrent's for \(path.lastPathComponent), piece length \(pieceLength)",
            sourceLocation: sourceLocation)
        #expect(shoal.files == reference.files, sourceLocation: sourceLocation)
        #expect(shoal.pieceLength == pieceLength, sourceLocation: sourceLocation)
        #expect(shoal.pieceCount == reference.pieceCount, sourceLocation: sourceLocation)
        #expect(shoal.name == reference.name, sourceLocation: sourceLocation)
        #expect(shoal.private == reference.private, sourceLocation: sourceLocation)
        #expect(shoal.source == reference.source, sourceLocation: sourceLocation)
        #expect(shoal.warnings == nil, sourceLocation: sourceLocation)
        return shoal
    }

    // MARK: Fixed trees

    static let nested = FileTree([
        ("readme.txt", 1_234),
        ("photos/2023/summer/beach.raw", 70_001),
        ("photos/2023/summer/sunset.raw", 32_768),
        ("photos/2023/winter/snow.raw", 16_383),
        ("photos/index.html", 5),
        ("music/a/b/c/d/track01.flac", 131_073),
        ("music/a/b/c/d/track02.flac", 1),
        ("zzz/last", 65_536),
    ], emptyDirectories: ["music/empty", "nothing/here"])

    /// Names that sort around `/` (space, `-`, `.` below it; digits, capitals, `_` above), hidden
    /// and empty files, accents, CJK and emoji.
    static let awkward = FileTree([
        ("a b", 10_000),
        ("a-b", 20_000),
        ("a/c", 30_000),
        ("a/c d/e", 1_000),
        ("a.b", 5_000),
        ("a0", 40_000),
        ("A", 3_000),
        ("_x", 7_000),
        (".hidden", 999),
        (".config/settings", 2_048),
        ("empty", 0),
        ("sub/empty too", 0),
        ("é", 12_345),
        ("cafe\u{301}", 11),
        ("日本/語.txt", 50_000),
        ("🐟 fish 🎉", 33_333),
        ("~tilde", 1),
        ("Zebra", 4_096),
    ])

    @Test(arguments: [1, 100_001, 256 << 10, 300_000], pieceLengths)
    func singleFile(size: Int, pieceLength: Int) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("data.bin")
            try FileTree.contents(size: size, seed: UInt64(size)).write(to: file)
            let info = try await Self.expectAgreement(file, pieceLength: pieceLength, in: directory)
            #expect(info.files?.map(\.path) == ["data.bin"])
        }
    }

    @Test(arguments: pieceLengths)
    func nestedFolders(pieceLength: Int) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("nested")
            try Self.nested.write(to: root)
            try await Self.expectAgreement(root, pieceLength: pieceLength, in: directory)
        }
    }

    @Test(arguments: pieceLengths)
    func awkwardNames(pieceLength: Int) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("Awkward names ✓")
            try Self.awkward.write(to: root)
            let info = try await Self.expectAgreement(root, pieceLength: pieceLength, in: directory)
            let expected = Self.awkward.sortedFiles.map { "Awkward names ✓/\($0.relativePath)" }
            #expect(info.files?.map(\.path) == expected)
        }
    }

    /// Two names that differ in their bytes but are canonically equivalent Unicode ("é" as U+00E9 and
    /// as U+0065 U+0301) are two files on Linux, for mktorrent and libtorrent alike.
    @Test func canonicallyEquivalentNames() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("twins")
            try FileTree([("\u{E9}", 1), ("e\u{301}", 22), ("plain", 3)]).write(to: root)
            let theirs = directory.appendingPathComponent("mktorrent.torrent")
            try await Self.mktorrent(root, output: theirs, pieceLength: 32 << 10)
            try await Self.expectShoalAgrees(with: theirs, root, pieceLength: 32 << 10, in: directory)
        }
    }

    /// 16 KiB pieces, where mktorrent takes them (1.1 does not; libtorrent and transmission-create
    /// cover 16 KiB then).
    @Test func sixteenKiBPieces() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("nested")
            try Self.nested.write(to: root)
            try await Self.expectAgreement(root, pieceLength: 16 << 10, in: directory)
        }
    }

    @Test(arguments: [11, 22, 33, 44, 55] as [UInt64])
    func randomTree(seed: UInt64) async throws {
        let tree = FileTree.random(seed: seed, style: .wide)
        let pieceLength = [32 << 10, 64 << 10, 256 << 10][Int(seed % 3)]
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("tree-\(seed)")
            try tree.write(to: root)
            let info = try await Self.expectAgreement(root, pieceLength: pieceLength, in: directory)
            #expect(info.files?.map(\.path) == tree.sortedFiles.map { "tree-\(seed)/\($0.relativePath)" }, "\(tree)")
        }
    }

    // MARK: Private and source

    struct Flags: Sendable, CustomStringConvertible {
        var isPrivate: Bool
        var source: String?
        var description: String { "private \(isPrivate), source \(source ?? "none")" }
    }

    @Test(arguments: [
        Flags(isPrivate: true, source: nil),
        Flags(isPrivate: false, source: "SHOAL-TEST"),
        Flags(isPrivate: true, source: "tracker.example ✓"),
    ])
    func privateAndSource(flags: Flags) async throws {
        let executable = try Interop.require(.mktorrent)
        if flags.source != nil {
            let help = try await ExternalProcess.run(executable, ["-h"], timeout: .seconds(10))
            if !(help.stdoutText + help.stderr).contains("--source") {
                try Test.cancel("this mktorrent has no -s/--source")
            }
        }
        var shoalExtra: [String] = []
        var mktorrentExtra: [String] = []
        if flags.isPrivate {
            shoalExtra.append("--private")
            mktorrentExtra.append("-p")
        }
        if let source = flags.source {
            shoalExtra += ["--source", source]
            mktorrentExtra += ["-s", source]
        }
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("nested")
            try Self.nested.write(to: root)
            let plain = directory.appendingPathComponent("plain.torrent")
            try await Interop.shoalCreate(root, output: plain, ["--piece-length", "\(32 << 10)"])
            let plainInfo = try await Interop.shoalInfo(plain.path)
            let info = try await Self.expectAgreement(
                root, pieceLength: 32 << 10, shoal: shoalExtra, mktorrent: mktorrentExtra, in: directory)
            #expect(info.private == flags.isPrivate)
            #expect(info.source == flags.source)
            #expect(info.infoHashV1 != plainInfo.infoHashV1, "private and source belong in the info dictionary")
        }
    }
}
