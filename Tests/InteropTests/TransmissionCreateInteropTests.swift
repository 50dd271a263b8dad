import Foundation
import ShoalProcess
import ShoalCore
import Testing

/// `shoal create` against transmission-create (3.00) on plain lower-case ASCII trees without empty
/// files (transmission-create leaves empty files out and orders paths ignoring case).
///
/// transmission-create always writes `private` into the info dictionary, `0` when the torrent is
/// public, which mktorrent and Shoal leave out: so the info-hashes agree for private torrents, and
/// public ones agree in everything but that key.
@Suite(.enabled(if: Interop.shouldRun(tool: .transmissionCreate)))
struct TransmissionCreateInteropTests {
    /// `transmission-create -o OUTPUT -s KIB [-p -t DEAD] PATH`.
    static func transmissionCreate(_ path: URL, output: URL, pieceKiB: Int, isPrivate: Bool) async throws {
        let executable = try Interop.require(.transmissionCreate)
        // A private torrent needs a tracker; trackers are outside the info dictionary.
        let privacy = isPrivate ? ["-p", "-t", Interop.deadTracker] : []
        let outcome = try await ExternalProcess.run(
            executable, ["-o", output.path, "-s", "\(pieceKiB)"] + privacy + [path.path], timeout: .seconds(60))
        guard outcome.succeeded, FileManager.default.fileExists(atPath: output.path) else {
            throw ProcessError("transmission-create failed: \(outcome.summary)")
        }
    }

    static func tree(seed: UInt64) -> FileTree {
        FileTree.random(
            seed: seed, style: .portable, maxFiles: 10, maxDepth: 3, emptyFiles: false, emptyDirectories: true)
    }

    @Test(arguments: [16, 32, 256])
    func privateTreeHasTheSameInfoHash(pieceKiB: Int) async throws {
        let tree = Self.tree(seed: UInt64(1_000 + pieceKiB))
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("plain")
            try tree.write(to: root)
            let ours = directory.appendingPathComponent("shoal.torrent")
            let theirs = directory.appendingPathComponent("transmission.torrent")
            try await Self.transmissionCreate(root, output: theirs, pieceKiB: pieceKiB, isPrivate: true)
            try await Interop.shoalCreate(root, output: ours, ["--piece-length", "\(pieceKiB << 10)", "--private"])
            let shoal = try await Interop.shoalInfo(ours.path)
            let reference = try await Interop.shoalInfo(theirs.path)
            #expect(shoal.infoHashV1 != nil)
            #expect(shoal.infoHashV1 == reference.infoHashV1, "tree: \(tree)")
            #expect(shoal.files == reference.files)
            #expect(shoal.pieceCount == reference.pieceCount)
            #expect(reference.private == true)
        }
    }

    @Test(arguments: [16, 64])
    func privateSingleFileHasTheSameInfoHash(pieceKiB: Int) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("single.bin")
            try FileTree.contents(size: 100_001, seed: 5).write(to: file)
            let ours = directory.appendingPathComponent("shoal.torrent")
            let theirs = directory.appendingPathComponent("transmission.torrent")
            try await Self.transmissionCreate(file, output: theirs, pieceKiB: pieceKiB, isPrivate: true)
            try await Interop.shoalCreate(file, output: ours, ["--piece-length", "\(pieceKiB << 10)", "--private"])
            let shoal = try await Interop.shoalInfo(ours.path)
            let reference = try await Interop.shoalInfo(theirs.path)
            #expect(shoal.infoHashV1 != nil)
            #expect(shoal.infoHashV1 == reference.infoHashV1)
            #expect(shoal.files == reference.files)
        }
    }

    /// Public: the info dictionaries differ only by transmission's `private: 0`.
    @Test(arguments: [2_001, 2_002] as [UInt64])
    func publicTreeDiffersOnlyByPrivateZero(seed: UInt64) async throws {
        let tree = Self.tree(seed: seed)
        try await Interop.withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("plain")
            try tree.write(to: root)
            let ours = directory.appendingPathComponent("shoal.torrent")
            let theirs = directory.appendingPathComponent("transmission.torrent")
            try await Self.transmissionCreate(root, output: theirs, pieceKiB: 32, isPrivate: false)
            try await Interop.shoalCreate(root, output: ours, ["--piece-length", "\(32 << 10)"])
            let shoal = try Metainfo(parsing: [UInt8](Data(contentsOf: ours)))
            let reference = try Metainfo(parsing: [UInt8](Data(contentsOf: theirs)))
            #expect(shoal.info.name == reference.info.name)
            #expect(shoal.info.pieceLength == reference.info.pieceLength)
            #expect(shoal.info.files == reference.info.files, "tree: \(tree)")
            #expect(shoal.info.pieceHashes == reference.info.pieceHashes)
            #expect(!reference.info.isPrivate && !shoal.info.isPrivate)
            #expect(Self.contains(reference.infoBytes, "7:privatei0e"))
            #expect(!Self.contains(shoal.infoBytes, "7:private"))
        }
    }

    static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
