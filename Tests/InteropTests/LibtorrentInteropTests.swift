import Foundation
import ShoalProcess
import Testing

/// `shoal info` on torrents that libtorrent 2.0 makes (hybrid v1+v2 with padding files, v1-only,
/// v2-only) must report libtorrent's own v1 and v2 info-hashes and file list; and for single files,
/// where no ordering question arises, `shoal create` must match a libtorrent v1 torrent.
@Suite(.enabled(if: Interop.shouldRun(tool: .libtorrent)))
struct LibtorrentInteropTests {
    /// Makes a torrent with libtorrent and prints what libtorrent reads back from it, as JSON.
    /// Arguments: CONTENT OUTPUT PIECE_LENGTH MODE, with MODE hybrid, v1, v2 or hybrid-symlinks.
    static let script = #"""
        import json, os, sys
        import libtorrent as lt

        content, output, piece_length, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
        ct_flags = lt.create_torrent
        wanted = {"hybrid": [], "v1": ["v1_only"], "v2": ["v2_only"],
                  "hybrid-symlinks": ["symlinks"], "v1-symlinks": ["v1_only", "symlinks"]}[mode]
        missing = [name for name in wanted if not hasattr(ct_flags, name)]
        if missing:
            print(json.dumps({"unsupported": "libtorrent %s has no create_torrent.%s" % (lt.__version__, missing[0])}))
            sys.exit(0)
        flags = 0
        for name in wanted:
            flags |= getattr(ct_flags, name)

        fs = lt.file_storage()
        lt.add_files(fs, content, flags=flags)
        ct = lt.create_torrent(fs, piece_length, flags=flags)
        lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(content)))
        with open(output, "wb") as f:
            f.write(lt.bencode(ct.generate()))

        ti = lt.torrent_info(output)
        hashes = ti.info_hashes()
        files = ti.files()
        zero = "0" * 64
        report = []
        for i in range(files.num_files()):
            fl = files.file_flags(i)
            attrs = "".join(letter for letter, bit in (
                ("p", lt.file_storage.flag_pad_file), ("x", lt.file_storage.flag_executable),
                ("h", lt.file_storage.flag_hidden), ("l", lt.file_storage.flag_symlink)) if fl & bit)
            root = str(files.root(i))
            report.append({
                "path": files.file_path(i), "size": files.file_size(i), "offset": files.file_offset(i),
                "attributes": attrs, "root": None if root == zero else root,
                "symlink": files.symlink(i) if fl & lt.file_storage.flag_symlink else None,
            })
        print(json.dumps({
            "version": lt.__version__,
            "v1": hashes.v1.to_bytes().hex() if hashes.has_v1() else None,
            "v2": hashes.v2.to_bytes().hex() if hashes.has_v2() else None,
            "name": ti.name(), "pieceLength": ti.piece_length(), "pieceCount": ti.num_pieces(),
            "totalSize": ti.total_size(), "files": report,
        }))
        """#

    /// What the script prints.
    struct Report: Decodable, Sendable {
        struct File: Decodable, Sendable {
            var path: String
            var size: Int64
            var offset: Int64
            var attributes: String
            var root: String?
            var symlink: String?

            var isPadding: Bool { attributes.contains("p") }
        }

        var unsupported: String?
        var version: String?
        var v1: String?
        var v2: String?
        var name: String?
        var pieceLength: Int?
        var pieceCount: Int?
        var totalSize: Int64?
        var files: [File]?
    }

    enum Mode: String, Sendable {
        case hybrid, v1, v2
        case hybridSymlinks = "hybrid-symlinks"
        case v1Symlinks = "v1-symlinks"
    }

    /// Runs the script on `content`; cancels the test when these bindings lack the mode.
    static func libtorrentCreate(
        _ content: URL, output: URL, pieceLength: Int, mode: Mode, in directory: URL
    ) async throws -> Report {
        let python = try Interop.require(.libtorrent)
        let scriptURL = directory.appendingPathComponent("libtorrent_create.py")
        try Data(script.utf8).write(to: scriptURL)
        // Debian's Python with its own packages: no pyenv or virtualenv settings may leak in.
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("PYTHON") || key == "VIRTUAL_ENV" {
            environment[key] = nil
        }
        let outcome = try await ExternalProcess.run(
            python, [scriptURL.path, content.path, output.path, "\(pieceLength)", mode.rawValue],
            environment: environment, timeout: .seconds(60))
        guard outcome.succeeded else {
            throw ProcessError("the libtorrent script failed: \(outcome.summary)")
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(outcome.stdout))
        if let unsupported = report.unsupported { try Test.cancel(Comment(rawValue: unsupported)) }
        return report
    }

    /// libtorrent's path with `/` separators.
    static func normalised(_ path: String) -> String {
        path.replacingOccurrences(of: "\\", with: "/")
    }

    static func letters(_ attributes: String?) -> Set<Character> { Set(attributes ?? "") }

    /// Expects Shoal's file entries to be libtorrent's, one for one and in order.
    static func expectSameFiles(
        _ shoal: [ShoalInfo.File], _ libtorrent: [Report.File], name: String, isMultiFile: Bool,
        comparesRoots: Bool, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            shoal.map(\.path) == libtorrent.map { normalised($0.path) }, sourceLocation: sourceLocation)
        guard shoal.count == libtorrent.count else { return }
        for (ours, theirs) in zip(shoal, libtorrent) {
            #expect(ours.length == theirs.size, "\(ours.path)", sourceLocation: sourceLocation)
            #expect(ours.offset == theirs.offset, "\(ours.path)", sourceLocation: sourceLocation)
            #expect(ours.padding == theirs.isPadding, "\(ours.path)", sourceLocation: sourceLocation)
            #expect(
                letters(ours.attributes) == letters(theirs.attributes), "\(ours.path)", sourceLocation: sourceLocation)
            if comparesRoots {
                #expect(ours.piecesRoot == theirs.root, "\(ours.path)", sourceLocation: sourceLocation)
            }
            // libtorrent shows a symlink's target below the download directory, Shoal below the torrent's.
            let target = theirs.symlink.map { isMultiFile ? String(normalised($0).dropFirst(name.count + 1)) : $0 }
            #expect(ours.symlinkTarget == target, "\(ours.path)", sourceLocation: sourceLocation)
        }
    }

    /// Makes a torrent of `content` with libtorrent and compares `shoal info --json` with libtorrent's view.
    static func expectShoalReadsLibtorrent(
        _ content: URL, pieceLength: Int, mode: Mode, in directory: URL,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let output = directory.appendingPathComponent("libtorrent.torrent")
        let reference = try await libtorrentCreate(
            content, output: output, pieceLength: pieceLength, mode: mode, in: directory)
        try await expectShoalReads(output, as: reference, sourceLocation: sourceLocation)
    }

    /// Expects `shoal info --json` on libtorrent's `torrent` to match what libtorrent read from it.
    static func expectShoalReads(
        _ torrent: URL, as reference: Report, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let shoal = try await Interop.shoalInfo(torrent.path)
        let theirFiles = reference.files ?? []
        let name = reference.name ?? ""
        let isMultiFile = theirFiles.count > 1 || theirFiles.first.map { normalised($0.path) != name } ?? false

        #expect(shoal.kind == "torrent", sourceLocation: sourceLocation)
        #expect(shoal.infoHashV1 == reference.v1, "v1 info-hash", sourceLocation: sourceLocation)
        #expect(shoal.infoHashV2 == reference.v2, "v2 info-hash", sourceLocation: sourceLocation)
        #expect(shoal.name == reference.name, sourceLocation: sourceLocation)
        #expect(shoal.pieceLength == reference.pieceLength, sourceLocation: sourceLocation)
        #expect(shoal.pieceCount == reference.pieceCount, sourceLocation: sourceLocation)
        #expect(shoal.metaVersion == (reference.v2 == nil ? 1 : 2), sourceLocation: sourceLocation)
        #expect(shoal.warnings == nil, sourceLocation: sourceLocation)

        let shoalFiles = shoal.files ?? []
        let realFiles = theirFiles.filter { !$0.isPadding }
        // Shoal's total is the content's size; libtorrent's counts padding files too.
        #expect(shoal.totalSize == realFiles.reduce(0) { $0 + $1.size }, sourceLocation: sourceLocation)
        switch (reference.v1 != nil, reference.v2 != nil) {
        case (true, false):
            expectSameFiles(
                shoalFiles, theirFiles, name: name, isMultiFile: isMultiFile, comparesRoots: false,
                sourceLocation: sourceLocation)
        case (true, true):
            // The v1 list with its padding files, then the v2 tree (no padding) with pieces roots.
            expectSameFiles(
                shoalFiles, theirFiles, name: name, isMultiFile: isMultiFile, comparesRoots: false,
                sourceLocation: sourceLocation)
            expectSameFiles(
                shoal.v2Files ?? [], realFiles, name: name, isMultiFile: isMultiFile, comparesRoots: true,
                sourceLocation: sourceLocation)
        case (false, true):
            // libtorrent lays v2-only files out with padding between them; the torrent has none.
            expectSameFiles(
                shoalFiles, realFiles, name: name, isMultiFile: isMultiFile, comparesRoots: true,
                sourceLocation: sourceLocation)
            #expect(shoal.v2Files == nil, sourceLocation: sourceLocation)
        case (false, false):
            Issue.record("libtorrent reports no info-hash", sourceLocation: sourceLocation)
        }
    }

    // MARK: Cases

    struct Case: Sendable, CustomStringConvertible {
        enum Content: Sendable {
            case tree(seed: UInt64, executables: Bool)
            case singleFile(size: Int)
        }

        var mode: Mode
        var content: Content
        var pieceLength: Int

        var description: String { "\(mode.rawValue), \(content), \(pieceLength >> 10) KiB pieces" }
    }

    static let cases: [Case] = [
        Case(mode: .hybrid, content: .tree(seed: 101, executables: false), pieceLength: 16 << 10),
        Case(mode: .hybrid, content: .tree(seed: 202, executables: true), pieceLength: 32 << 10),
        Case(mode: .hybrid, content: .tree(seed: 203, executables: false), pieceLength: 64 << 10),
        Case(mode: .hybrid, content: .singleFile(size: 100_001), pieceLength: 16 << 10),
        Case(mode: .v1, content: .tree(seed: 303, executables: true), pieceLength: 32 << 10),
        Case(mode: .v1, content: .singleFile(size: 65_536), pieceLength: 16 << 10),
        Case(mode: .v2, content: .tree(seed: 404, executables: false), pieceLength: 64 << 10),
        Case(mode: .v2, content: .singleFile(size: 300_000), pieceLength: 16 << 10),
    ]

    @Test(arguments: cases)
    func shoalReadsLibtorrentTorrent(_ testCase: Case) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let content: URL
            switch testCase.content {
            case .tree(let seed, let executables):
                content = directory.appendingPathComponent("tree-\(seed)")
                // Names stay clear of case-insensitive twins: libtorrent renames those when it loads them.
                // Two files at least: a folder holding one file is a case of its own (`folderWithOneFile`).
                try FileTree.random(seed: seed, style: .wide, minFiles: 2, executables: executables)
                    .write(to: content)
            case .singleFile(let size):
                content = directory.appendingPathComponent("single file.bin")
                try FileTree.contents(size: size, seed: UInt64(size)).write(to: content)
            }
            try await Self.expectShoalReadsLibtorrent(
                content, pieceLength: testCase.pieceLength, mode: testCase.mode, in: directory)
        }
    }

    /// Hidden, empty and nested files, and folders that hold only empty files.
    @Test(arguments: [Mode.hybrid, .v1, .v2])
    func emptyAndHiddenFiles(mode: Mode) async throws {
        let tree = FileTree([
            (".hidden", 40_000),
            ("a/empty", 0),
            ("a/b/c/deep", 20_000),
            ("b", 0),
            ("only empties/x", 0),
            ("z", 1),
        ])
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("mixed")
            try tree.write(to: root)
            try await Self.expectShoalReadsLibtorrent(root, pieceLength: 16 << 10, mode: mode, in: directory)
        }
    }

    /// A folder that holds a single file: the v1 part lists `FOLDER/FILE` while the v2 file tree holds
    /// just `FILE` (its `name` is the folder). libtorrent reads the hybrid as the one-file folder, and
    /// the v2-only torrent as a single file named by the tree's key.
    @Test(arguments: [Mode.hybrid, .v2])
    func folderWithOneFile(mode: Mode) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("folder")
            try FileTree([("inner.bin", 50_000)]).write(to: root)
            let output = directory.appendingPathComponent("libtorrent.torrent")
            let reference = try await Self.libtorrentCreate(
                root, output: output, pieceLength: 16 << 10, mode: mode, in: directory)
            try await Self.expectShoalReads(output, as: reference)
        }
    }

    /// Symbolic links (BEP 47) in a v1 torrent; in a hybrid, libtorrent 2.0.8 writes the link into the v2
    /// file tree as `{"": {"attr": "xl", "symlink path": [...]}}` with no `length`.
    @Test(arguments: [Mode.v1Symlinks, .hybridSymlinks])
    func symbolicLinks(mode: Mode) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("links")
            try FileTree([("sub/real.bin", 50_000), ("other", 1_000)]).write(to: root)
            try FileManager.default.createSymbolicLink(
                atPath: root.appendingPathComponent("link").path, withDestinationPath: "sub/real.bin")
            try await Self.expectShoalReadsLibtorrent(root, pieceLength: 16 << 10, mode: mode, in: directory)
        }
    }

    /// A single file has no ordering question: `shoal create` must equal libtorrent's v1 torrent,
    /// also at 16 KiB, which mktorrent 1.1 cannot make.
    @Test(arguments: [(16 << 10, 100_001), (16 << 10, 16 << 10), (32 << 10, 1), (256 << 10, 700_000)])
    func shoalCreateMatchesLibtorrentV1SingleFile(pieceLength: Int, size: Int) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("payload.dat")
            try FileTree.contents(size: size, seed: 77).write(to: file)
            let reference = try await Self.libtorrentCreate(
                file, output: directory.appendingPathComponent("libtorrent.torrent"), pieceLength: pieceLength,
                mode: .v1, in: directory)
            let ours = directory.appendingPathComponent("shoal.torrent")
            try await Interop.shoalCreate(file, output: ours, ["--piece-length", "\(pieceLength)"])
            let shoal = try await Interop.shoalInfo(ours.path)
            #expect(shoal.infoHashV1 != nil)
            #expect(shoal.infoHashV1 == reference.v1)
        }
    }
}
