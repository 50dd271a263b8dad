import Foundation
import ShoalProcess
import ShoalTestSupport
import Testing

/// Bad input through the real `shoal` binary: it must exit with status 1 (not a signal, not a hang),
/// print exactly one line on standard error starting with `shoal: error:`, and nothing on standard output.
@Suite struct CommandLineErrorTests {
    static func expectCleanFailure(_ outcome: ProcessOutcome, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!outcome.timedOut, "\(outcome.summary)", sourceLocation: sourceLocation)
        #expect(outcome.signal == nil, "crashed: \(outcome.summary)", sourceLocation: sourceLocation)
        #expect(outcome.exitCode == 1, "\(outcome.summary)", sourceLocation: sourceLocation)
        #expect(outcome.stderr.hasPrefix("shoal: error: "), "\(outcome.summary)", sourceLocation: sourceLocation)
        #expect(outcome.stderr.hasSuffix("\n"), "\(outcome.summary)", sourceLocation: sourceLocation)
        #expect(
            outcome.stderr.filter { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }.count == 1,
            "want one line: \(outcome.summary)", sourceLocation: sourceLocation)
        #expect(outcome.stdout.isEmpty, "\(outcome.summary)", sourceLocation: sourceLocation)
    }

    /// `shoal info FILE` (and with `--json`) on a file holding `bytes`.
    static func expectInfoRefuses(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("bad.torrent")
            try Data(bytes).write(to: file)
            for extra in [[], ["--json"]] {
                let outcome = try await Interop.shoal(["info", file.path] + extra)
                expectCleanFailure(outcome, sourceLocation: sourceLocation)
            }
        }
    }

    static let twentyBytes = String(repeating: "a", count: 20)

    /// A one-file torrent in bencode text, with `name`, `length`, `piece length` and `pieces` given.
    static func singleFileTorrent(name: String = "1:x", length: String = "3", pieceLength: String = "16384",
                                  pieces: String = "20:" + twentyBytes) -> [UInt8] {
        Array("d4:infod6:lengthi\(length)e4:name\(name)12:piece lengthi\(pieceLength)e6:pieces\(pieces)ee".utf8)
    }

    /// A multi-file torrent whose one file has the given bencoded path list.
    static func multiFileTorrent(path: String) -> [UInt8] {
        Array(("d4:infod5:filesld6:lengthi3e4:path\(path)ee4:name4:root12:piece lengthi16384e6:pieces20:"
            + twentyBytes + "ee").utf8)
    }

    // MARK: shoal info on files

    @Test func truncatedTorrent() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let content = directory.appendingPathComponent("content")
            try FileTree([("a", 40_000), ("b/c", 9_000), ("empty", 0)]).write(to: content)
            let torrent = directory.appendingPathComponent("whole.torrent")
            try await Interop.shoalCreate(content, output: torrent, ["--piece-length", "16384"])
            let whole = [UInt8](try Data(contentsOf: torrent))
            #expect(whole.count > 100)
            // Cut at the start, in the info dictionary, in the piece hashes and just before the end.
            let cuts = Set([1, 2, 10, whole.count / 4, whole.count / 2, whole.count * 3 / 4, whole.count - 21,
                            whole.count - 2, whole.count - 1])
            for cut in cuts.sorted() {
                try await Self.expectInfoRefuses(Array(whole.prefix(cut)))
            }
        }
    }

    @Test(arguments: 1...8)
    func randomGarbage(seed: Int) async throws {
        var generator = SeededGenerator(seed: UInt64(seed))
        let length = 1 + generator.next(upTo: 4_096)
        var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        // Half the cases start like a torrent, so that the garbage reaches deeper into the parser.
        if seed % 2 == 0 { bytes = Array("d8:announce3:url4:infod".utf8) + bytes }
        try await Self.expectInfoRefuses(bytes)
    }

    static let malformed: [String] = [
        "",
        "de",
        "le",
        "i42e",
        "d4:infodee",
        "d4:infoi1ee",
        String(repeating: "l", count: 100_000),
        String(repeating: "d1:a", count: 50_000),
        "99999999999999999999:abc",
        "d4:infod6:lengthi-1e4:name1:x12:piece lengthi16384e6:pieces20:" + twentyBytes + "ee",
        "d4:infod6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces19:" + String(twentyBytes.dropLast()) + "ee",
    ]

    @Test(arguments: malformed.indices)
    func malformedBencode(index: Int) async throws {
        try await Self.expectInfoRefuses(Array(Self.malformed[index].utf8))
    }

    @Test(arguments: ["l2:..2:..3:etc6:passwde", "l6:/etc/xe", "l0:e", "le", "l1:.1:ae", "l3:a\u{1}be"])
    func hostileFilePath(path: String) async throws {
        try await Self.expectInfoRefuses(Self.multiFileTorrent(path: path))
    }

    @Test(arguments: ["2:..", "1:.", "0:", "5:a/b/c"])
    func hostileName(name: String) async throws {
        try await Self.expectInfoRefuses(Self.singleFileTorrent(name: name))
    }

    @Test(arguments: ["0", "-16384", "1099511627776", "99999999999999999999999", "3000000000"])
    func absurdPieceLength(pieceLength: String) async throws {
        try await Self.expectInfoRefuses(Self.singleFileTorrent(pieceLength: pieceLength))
    }

    @Test func pieceHashesThatDoNotCoverTheContent() async throws {
        // 100 000 bytes in 16 KiB pieces need 7 hashes, not 1.
        try await Self.expectInfoRefuses(Self.singleFileTorrent(length: "100000"))
    }

    @Test func directory() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let outcome = try await Interop.shoal(["info", directory.path])
            Self.expectCleanFailure(outcome)
        }
    }

    @Test func missingFile() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let outcome = try await Interop.shoal(["info", directory.appendingPathComponent("nope.torrent").path])
            Self.expectCleanFailure(outcome)
        }
    }

    // MARK: shoal info on magnet links

    @Test(arguments: [
        "magnet:?xt=urn:btih:zz",
        "magnet:?dn=no-hash",
        "magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a1",
        "magnet:?xt=urn:btmh:1220abcd",
        "magnet:?xt=urn:sha1:08ada5a7a6183aae1e09d831df6748d566095a10",
        "magnet:",
    ])
    func invalidMagnetLink(link: String) async throws {
        for extra in [[], ["--json"]] {
            Self.expectCleanFailure(try await Interop.shoal(["info", link] + extra))
        }
    }

    @Test func validMagnetLink() async throws {
        let link = "magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=Sintel"
            + "&tr=udp%3A%2F%2Fexplodie.org%3A6969&ws=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2F"
        let text = try await Interop.shoal(["info", link])
        #expect(text.succeeded, "\(text.summary)")
        #expect(text.stderr.isEmpty)
        #expect(text.stdoutText.contains("08ada5a7a6183aae1e09d831df6748d566095a10"))
        #expect(text.stdoutText.contains("Sintel"))

        let info = try await Interop.shoalInfo(link)
        #expect(info.kind == "magnet")
        #expect(info.infoHashV1 == "08ada5a7a6183aae1e09d831df6748d566095a10")
        #expect(info.infoHashV2 == nil)
        #expect(info.name == "Sintel")
        #expect(info.trackers == [["udp://explodie.org:6969"]])
        #expect(info.webSeeds == ["https://webtorrent.io/torrents/"])
        #expect(info.files == nil)
    }

    // MARK: shoal create

    @Test func createOnAMissingPath() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let output = directory.appendingPathComponent("out.torrent")
            let outcome = try await Interop.shoal(
                ["create", directory.appendingPathComponent("missing").path, "-o", output.path])
            Self.expectCleanFailure(outcome)
            #expect(!FileManager.default.fileExists(atPath: output.path))
        }
    }

    @Test(arguments: ["1000", "0", "-16384", "16385", "24576"])
    func createWithABadPieceLength(pieceLength: String) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let content = directory.appendingPathComponent("content")
            try FileTree([("a", 1_000)]).write(to: content)
            let output = directory.appendingPathComponent("out.torrent")
            let outcome = try await Interop.shoal(
                ["create", content.path, "-o", output.path, "--piece-length=\(pieceLength)"])
            Self.expectCleanFailure(outcome)
            #expect(!FileManager.default.fileExists(atPath: output.path))
        }
    }
}
