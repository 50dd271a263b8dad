import ShoalBencode
import ShoalTestSupport
import Testing

@testable import ShoalCore

@Suite("Metainfo (.torrent files)")
struct MetainfoTests {
    private static let hashesA = String(repeating: "A", count: 20)
    private static let hashesAB = hashesA + String(repeating: "B", count: 20)

    /// A single-file torrent written out by hand; its expected info-hash was computed with Python's hashlib.
    private static let singleFile = Array(
        ("d8:announce30:http://127.0.0.1:6969/announce7:comment5:hello10:created by5:Shoal13:creation datei1700000000e"
            + "4:infod6:lengthi40000e4:name8:file.bin12:piece lengthi32768e6:pieces40:\(hashesAB)ee").utf8)

    private func parse(_ value: BencodeValue) throws(MetainfoError) -> Metainfo {
        try Metainfo(parsing: value.encoded)
    }

    private func parseError(_ value: BencodeValue) -> MetainfoError? {
        do {
            _ = try parse(value)
            return nil
        } catch {
            return error
        }
    }

    /// A valid multi-file torrent dictionary with the given files (each 10 bytes unless said).
    private func multiFile(
        _ paths: [[String]], lengths: [Int64]? = nil, name: String = "top", pieceLength: Int64 = 16384,
        pieceCount: Int? = nil
    ) -> BencodeValue {
        let lengths = lengths ?? paths.map { _ in 10 }
        let total = lengths.reduce(0, &+)
        let pieces = pieceCount ?? (pieceLength > 0 ? Int((total &+ pieceLength - 1) / pieceLength) : 1)
        let files: [BencodeValue] = zip(paths, lengths).map { path, length in
            ["length": .integer(length), "path": .list(path.map { .text($0) })]
        }
        return [
            "info": [
                "name": .text(name), "piece length": .integer(pieceLength), "files": .list(files),
                "pieces": .string(Array(repeating: 7, count: 20 * pieces)),
            ]
        ]
    }

    @Test func readsSingleFileTorrent() throws {
        let metainfo = try Metainfo(parsing: Self.singleFile)
        #expect(metainfo.infoHashV1?.hex == "00209c6820316617486f3d83e709665ccfe71981")
        #expect(metainfo.infoHashV2 == nil)
        #expect(metainfo.infoHash == .v1(metainfo.infoHashV1!))
        let info = metainfo.info
        #expect(info.name == "file.bin")
        #expect(!info.isDirectory)
        #expect(info.pieceLength == 32768)
        #expect(info.pieceCount == 2)
        #expect(info.totalLength == 40000)
        #expect(info.files == [TorrentFile(path: try TorrentPath(validating: ["file.bin"]), length: 40000)])
        #expect(info.pieceHash(1)?.bytes == Array(repeating: UInt8(ascii: "B"), count: 20))
        #expect(info.pieceHash(2) == nil)
        #expect(metainfo.trackers == [["http://127.0.0.1:6969/announce"]])
        #expect(metainfo.comment == "hello")
        #expect(metainfo.createdBy == "Shoal")
        #expect(metainfo.creationDate == 1_700_000_000)
        #expect(metainfo.warnings.isEmpty)
    }

    @Test func infoHashCoversTheExactBytesWhateverTheirOrder() throws {
        let unsortedInfo = "d4:name8:file.bin12:piece lengthi32768e6:lengthi40000e6:pieces40:\(Self.hashesAB)e"
        let metainfo = try Metainfo(parsing: Array("d4:info\(unsortedInfo)e".utf8))
        #expect(metainfo.infoHashV1?.hex == "c83bb57af3abec79105569490d3077a70b590950")
        #expect(metainfo.infoBytes == Array(unsortedInfo.utf8))
        #expect(metainfo.warnings.contains { $0.contains("out of order") })
        // Writing the torrent back keeps the info bytes, and so the info-hash.
        let rewritten = try Metainfo(parsing: metainfo.encoded())
        #expect(rewritten.infoHashV1 == metainfo.infoHashV1)
    }

    @Test func writingARealTorrentGivesTheSameBytes() throws {
        let metainfo = try Metainfo(parsing: Self.singleFile)
        #expect(metainfo.encoded() == Self.singleFile)
    }

    @Test func readsMultiFileTorrentWithPaddingAndAttributes() throws {
        let value: BencodeValue = [
            "info": [
                "name": "top", "piece length": 16384,
                "pieces": .string(Array(repeating: 1, count: 40)),
                "files": [
                    ["length": 100, "path": ["dir", "run.sh"], "attr": "x"],
                    ["length": 16284, "path": [".pad", "16284"], "attr": "p"],
                    ["length": 0, "path": ["link"], "attr": "lh", "symlink path": ["dir", "run.sh"]],
                    ["length": 5, "path": ["z"], "sha1": .string(Array(repeating: 9, count: 20))],
                ],
                "private": 1, "source": "SRC",
            ],
            "announce-list": [["http://a/announce", "http://b/announce"], [], ["udp://c:80"]],
            "url-list": "http://web/seed/",
        ]
        let metainfo = try parse(value)
        let info = metainfo.info
        #expect(info.isDirectory)
        #expect(info.isPrivate)
        #expect(info.source == "SRC")
        #expect(info.files.map(\.path.string) == ["top/dir/run.sh", "top/.pad/16284", "top/link", "top/z"])
        #expect(info.files.map(\.offset) == [0, 100, 16384, 16384])
        #expect(info.files.map(\.isPadding) == [false, true, false, false])
        #expect(info.files[0].attributes == .executable)
        #expect(info.files[2].attributes == [.symlink, .hidden])
        #expect(info.files[2].symlinkTarget?.string == "dir/run.sh")
        #expect(info.files[3].sha1?.bytes == Array(repeating: 9, count: 20))
        #expect(info.totalLength == 16389)
        #expect(metainfo.trackers == [["http://a/announce", "http://b/announce"], ["udp://c:80"]])
        #expect(metainfo.webSeeds == ["http://web/seed/"])
        // The writer keeps every field.
        let again = try Metainfo(parsing: metainfo.encoded())
        #expect(again.info == info)
        #expect(again.trackers == metainfo.trackers)
        #expect(again.webSeeds == metainfo.webSeeds)
        #expect(again.infoHashV1 == metainfo.infoHashV1)
    }

    @Test func prefersUTF8Variants() throws {
        let value: BencodeValue = [
            "info": [
                "name": .string([0xC4, 0xE3]), "name.utf-8": "你",
                "piece length": 16384, "pieces": .string(Array(repeating: 1, count: 20)),
                "files": [["length": 3, "path": [.string([0xBA, 0xC3])], "path.utf-8": ["好"]]],
            ],
            "comment": "plain", "comment.utf-8": "ünïcode",
        ]
        let metainfo = try parse(value)
        #expect(metainfo.info.name == "你")
        #expect(metainfo.info.files[0].path.string == "你/好")
        #expect(metainfo.comment == "ünïcode")
    }

    @Test func replacesBytesThatAreNotUTF8AndWarns() throws {
        var value = multiFile([["a"]])
        if case .dictionary(var root) = value, case .dictionary(var info)? = root[Array("info".utf8)] {
            info[Array("name".utf8)] = .string([0x41, 0xFF])
            root[Array("info".utf8)] = .dictionary(info)
            value = .dictionary(root)
        }
        let metainfo = try parse(value)
        #expect(metainfo.info.name == "A\u{FFFD}")
        #expect(metainfo.warnings.contains { $0.contains("not UTF-8") })
    }

    @Test func toleratesMalformedOptionalFields() throws {
        var value = multiFile([["a"]])
        if case .dictionary(var root) = value {
            root[Array("announce-list".utf8)] = 7
            root[Array("announce".utf8)] = "http://t/announce"
            root[Array("url-list".utf8)] = ["http://w/", 3]
            root[Array("creation date".utf8)] = "yesterday"
            value = .dictionary(root)
        }
        let metainfo = try parse(value)
        #expect(metainfo.trackers == [["http://t/announce"]])
        #expect(metainfo.webSeeds == ["http://w/"])
        #expect(metainfo.creationDate == nil)
        #expect(metainfo.warnings.count == 2)
    }

    @Test func readsV2OnlyTorrent() throws {
        let root = String(decoding: (0..<32).map { UInt8($0) }, as: UTF8.self)
        let info = "d9:file treed5:a.txtd0:d6:lengthi20000e11:pieces root32:\(root)eee12:meta versioni2e4:name4:test12:piece lengthi16384ee"
        let metainfo = try Metainfo(parsing: Array("d4:info\(info)e".utf8))
        #expect(metainfo.infoHashV1 == nil)
        #expect(metainfo.infoHashV2?.hex == "c91e998751a430005f3f691ea281e57380facb4c106da444049b8fe91a800761")
        #expect(metainfo.infoHash.truncated.hex == "c91e998751a430005f3f691ea281e57380facb4c")
        #expect(metainfo.info.metaVersion == 2)
        #expect(!metainfo.info.isDirectory)
        // A v2 single-file torrent is named by its tree key, as libtorrent reads it.
        #expect(metainfo.info.files.map(\.path.string) == ["a.txt"])
        #expect(metainfo.info.name == "a.txt")
        #expect(metainfo.info.files[0].piecesRoot?.bytes == (0..<32).map { UInt8($0) })
        #expect(metainfo.info.pieceCount == 2)
    }

    @Test func readsHybridTorrentAndChecksBothFileLists() throws {
        let rootA = BencodeValue.string(Array(repeating: 0xAA, count: 32))
        let tree: BencodeValue = [
            "a": ["": ["length": 20000, "pieces root": rootA]],
            "b": ["c": ["": ["length": 0]]],
            "d": ["": ["length": 5, "pieces root": .string(Array(repeating: 0xDD, count: 32))]],
        ]
        func hybrid(v1Files: [BencodeValue]) -> BencodeValue {
            [
                "info": [
                    "name": "h", "piece length": 16384, "meta version": 2, "file tree": tree,
                    "files": .list(v1Files), "pieces": .string(Array(repeating: 1, count: 60)),
                ]
            ]
        }
        let consistent: [BencodeValue] = [
            ["length": 20000, "path": ["a"]], ["length": 12768, "path": [".pad", "12768"], "attr": "p"],
            ["length": 0, "path": ["b", "c"]], ["length": 5, "path": ["d"]],
        ]
        let metainfo = try parse(hybrid(v1Files: consistent))
        #expect(metainfo.infoHashV1 != nil && metainfo.infoHashV2 != nil)
        #expect(metainfo.info.fileTree?.map(\.path.string) == ["h/a", "h/b/c", "h/d"])
        #expect(metainfo.info.fileTree?.map(\.offset) == [0, 32768, 32768])
        #expect(metainfo.magnetLink.infoHashes.count == 2)

        let inconsistent = [consistent[0], consistent[1], consistent[2], ["length": 6, "path": ["d"]]]
        #expect(parseError(hybrid(v1Files: inconsistent))?.code == .invalid("hybrid torrent's v1 file list and v2 file tree differ"))
    }

    @Test(arguments: [
        ([".."], TorrentPathError.Reason.parentDirectory),
        (["a", "..", "b"], .parentDirectory),
        (["/etc"], .separator),
        (["a/../../b"], .separator),
        ([""], .emptyComponent),
        (["."], .currentDirectory),
        (["a\u{0}b"], .controlCharacter(0)),
        (["new\nline"], .controlCharacter(10)),
        (["esc\u{1B}[2J"], .controlCharacter(0x1B)),
        (["c1\u{9B}"], .controlCharacter(0x9B)),
        ([String(repeating: "x", count: 256)], .componentTooLong(256)),
        ([], .empty),
    ])
    func refusesHostilePaths(path: [String], reason: TorrentPathError.Reason) throws {
        let error = try #require(parseError(multiFile([["fine"], path])))
        guard case .unsafePath(let pathError) = error.code else {
            Issue.record("expected an unsafe path error, got \(error)")
            return
        }
        #expect(pathError.reason == reason)
        #expect(error.field == "info.files[1].path")
        #expect(error.offset != nil)
    }

    @Test func refusesHostileNames() {
        for name in ["..", "/", "a/b", "", "x\u{7F}"] {
            let error = parseError(multiFile([["a"]], name: name))
            #expect(error?.field == "info.name", "name \(name)")
        }
        let singleFile: BencodeValue = [
            "info": ["name": "../../.bashrc", "length": 1, "piece length": 16384, "pieces": .string(Array(repeating: 0, count: 20))]
        ]
        #expect(parseError(singleFile)?.field == "info.name")
    }

    @Test func refusesSymlinksThatLeave() {
        let value: BencodeValue = [
            "info": [
                "name": "t", "piece length": 16384, "pieces": .string(Array(repeating: 0, count: 20)),
                "files": [["length": 1, "path": ["a"]], ["path": ["l"], "attr": "l", "symlink path": ["..", "..", "etc"]]],
            ]
        ]
        #expect(parseError(value)?.field == "info.files[1].symlink path")
    }

    @Test func refusesInconsistentSizes() {
        #expect(parseError(multiFile([["a"]], lengths: [40000], pieceCount: 1))?.code
            == .invalid("1 piece hashes for 40000 bytes in pieces of 16384 (expected 3)"))
        #expect(parseError(multiFile([["a"]], lengths: [-1]))?.code == .invalid("negative length -1"))
        #expect(parseError(multiFile([["a"]], lengths: [0]))?.code == .invalid("torrent holds no data"))
        #expect(parseError(multiFile([["a"], ["b"]], lengths: [Int64.max, 1], pieceCount: 1))?.code == .invalid("total length overflows"))
        #expect(parseError(multiFile([["a"]], pieceLength: 0))?.field == "info.piece length")
        #expect(parseError(multiFile([["a"]], pieceLength: 1 << 40))?.field == "info.piece length")
        let badPieces: BencodeValue = ["info": ["name": "x", "length": 1, "piece length": 16384, "pieces": "abc"]]
        #expect(parseError(badPieces)?.code == .invalid("pieces is 3 bytes, not a multiple of 20"))
    }

    @Test func refusesFilesThatCannotAllBeStored() {
        #expect(parseError(multiFile([["a"], ["a"]]))?.code == .invalid("two files named \"top/a\""))
        #expect(parseError(multiFile([["a"], ["a", "b"]]))?.code == .invalid("\"top/a\" is both a file and a directory"))
    }

    @Test func namesMissingAndMistypedFields() {
        #expect(parseError(["announce": "x"])?.code == .missing)
        #expect(parseError(["announce": "x"])?.field == "info")
        #expect(parseError(["info": 3])?.code == .wrongType(expected: .dictionary))
        #expect(parseError(["info": ["name": "x", "piece length": 16384, "length": 1]])?.field == "info.pieces")
        #expect(parseError(["info": ["name": "x", "piece length": 16384, "pieces": ""]])?.field == "info.length")
        #expect(parseError(["info": ["name": 5, "piece length": 16384, "pieces": "", "length": 1]])?.code
            == .wrongType(expected: .string))
        #expect(parseError(.list([]))?.code == .wrongType(expected: .dictionary))
    }

    @Test func reportsBencodeErrorsWithTheirOffset() {
        do {
            _ = try Metainfo(parsing: Array("d4:infod4:name".utf8))
            Issue.record("accepted a truncated torrent")
        } catch {
            #expect(error.code == .bencode(BencodeError(.truncated, at: 14)))
            #expect(error.description == "not a valid torrent: bencode: input ends in the middle of a value at byte 14")
        }
    }

    @Test func errorsReadAsOneClearLine() {
        let error = parseError(multiFile([["ok"], ["..", "x"]]))
        #expect(error?.description.hasPrefix("unsafe file path in info.files[1].path at byte ") == true)
        #expect(error?.description.hasSuffix("path component \"..\" would leave the download directory") == true)
    }

    /// Property: flipping, cutting and inserting bytes in a valid torrent never traps;
    /// each mutant is either read or refused with a MetainfoError.
    @Test func survivesMutatedTorrents() {
        var random = SeededGenerator(seed: 42)
        let original = Self.singleFile
        var accepted = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<(1 + random.next(upTo: 3)) {
                let index = random.next(upTo: bytes.count)
                switch random.next(upTo: 3) {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: index)
                }
            }
            if (try? Metainfo(parsing: bytes)) != nil { accepted += 1 }
        }
        // Mutations inside the piece hashes or text keep the torrent valid; most others do not.
        #expect(accepted > 0 && accepted < 3000)
    }

    @Test func buildsTorrentsForNewContent() throws {
        let info = try InfoDictionary(
            name: "new", pieceLength: 16384, pieceHashes: Array(repeating: 3, count: 40),
            files: [(try TorrentPath(validating: ["b", "x"]), 16384), (try TorrentPath(validating: ["c"]), 1)],
            isDirectory: true, isPrivate: true, source: "S")
        let metainfo = Metainfo(
            info: info, trackers: [["http://t/a"], ["http://u/a"]], webSeeds: ["http://w/1", "http://w/2"],
            comment: "c", createdBy: "Shoal", creationDate: 5)
        let read = try Metainfo(parsing: metainfo.encoded())
        #expect(read.info == info)
        #expect(read.infoHashV1 == metainfo.infoHashV1)
        #expect(read.trackers == metainfo.trackers)
        #expect(read.webSeeds == metainfo.webSeeds)
        #expect(read.comment == "c" && read.createdBy == "Shoal" && read.creationDate == 5)
        #expect(String(decoding: metainfo.infoBytes, as: UTF8.self).hasPrefix("d5:filesld6:lengthi16384e4:pathl1:b1:xeed6:lengthi1e4:pathl1:ceee4:name3:new12:piece lengthi16384e6:pieces40:"))
        #expect(metainfo.magnetLink.uri.contains("dn=new"))
    }
}
