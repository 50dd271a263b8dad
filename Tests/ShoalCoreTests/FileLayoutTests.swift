import ShoalBencode
import ShoalTestSupport
import Testing

@testable import ShoalCore

/// Files placed one after another from `lengths`; a length written as negative is a padding file of that
/// size (BEP 47).
private func files(_ lengths: [Int64]) -> [TorrentFile] {
    var offset: Int64 = 0
    return lengths.enumerated().map { index, signed in
        let length = abs(signed)
        let file = TorrentFile(
            path: try! TorrentPath(validating: ["t", "f\(index)"]), length: length, offset: offset,
            attributes: signed < 0 ? .padding : [])
        offset += length
        return file
    }
}

private func span(_ file: Int?, _ offsetInFile: Int64, _ length: Int, at offsetInRange: Int, padding: Bool = false) -> FileSpan {
    FileSpan(fileIndex: file, offsetInFile: offsetInFile, length: length, offsetInRange: offsetInRange, isPadding: padding)
}

/// The owner of every byte of the piece space, the slow way: nil for a byte of no file.
private func owners(_ files: [TorrentFile]) -> [Int?] {
    let total = Int(files.last.map { $0.offset + $0.length } ?? 0)
    var owners = [Int?](repeating: nil, count: total)
    for (index, file) in files.enumerated() {
        for byte in Int(file.offset)..<Int(file.offset + file.length) { owners[byte] = index }
    }
    return owners
}

/// The spans of `range`, merged from the owners of its bytes.
private func referenceSpans(_ files: [TorrentFile], _ owners: [Int?], _ range: Range<Int64>) -> [FileSpan] {
    var result: [FileSpan] = []
    for byte in range {
        let owner = owners[Int(byte)]
        let offsetInFile = owner.map { byte - files[$0].offset } ?? 0
        let padding = owner.map { files[$0].isPadding } ?? true
        if var last = result.last, last.fileIndex == owner,
            owner == nil || last.offsetInFile + Int64(last.length) == offsetInFile
        {
            last.length += 1
            result[result.count - 1] = last
        } else {
            result.append(span(owner, offsetInFile, 1, at: Int(byte - range.lowerBound), padding: padding))
        }
    }
    return result
}

@Suite("FileLayout")
struct FileLayoutTests {
    @Test func piecesAndBlocks() {
        let layout = FileLayout(pieceLength: 32 << 10, files: files([3 * (32 << 10) + 20000]))
        #expect(layout.pieceCount == 4)
        #expect(layout.totalLength == 3 * (32 << 10) + 20000)
        #expect((0..<4).map { layout.length(ofPiece: $0) } == [32768, 32768, 32768, 20000])
        #expect(layout.length(ofPiece: 4) == 0)
        #expect(layout.length(ofPiece: -1) == 0)
        #expect(layout.range(ofPiece: 3) == 98304..<118304)
        #expect((0..<4).map { layout.blockCount(ofPiece: $0) } == [2, 2, 2, 2])
        #expect(layout.length(ofBlock: 1, inPiece: 0) == 16384)
        #expect(layout.length(ofBlock: 1, inPiece: 3) == 20000 - 16384)
        #expect(layout.length(ofBlock: 2, inPiece: 3) == 0)
        #expect(layout.contains(piece: 3, offset: 16384, length: 3616))
        #expect(!layout.contains(piece: 3, offset: 16384, length: 3617))
        #expect(!layout.contains(piece: 0, offset: 0, length: 0))
        #expect(!layout.contains(piece: 0, offset: -1, length: 1))
        #expect(!layout.contains(piece: 0, offset: Int.max, length: Int.max))
        #expect(!layout.contains(piece: 4, offset: 0, length: 1))

        // A piece length that is not a multiple of a block: the last block of every piece is short.
        let odd = FileLayout(pieceLength: 20000, files: files([50000]))
        #expect(odd.pieceCount == 3)
        #expect(odd.blockCount(ofPiece: 0) == 2)
        #expect(odd.length(ofBlock: 1, inPiece: 0) == 20000 - 16384)
        #expect(odd.blockCount(ofPiece: 2) == 1)
        #expect(odd.length(ofBlock: 0, inPiece: 2) == 10000)
    }

    /// a(5) empty(0) b(3) pad(8) | c(20) | ... empty(0) d(4), pieces of 16: the first piece spans three files
    /// and a padding file; empty files never appear in spans.
    @Test func spansAcrossFilesPaddingAndEmptyFiles() {
        let layout = FileLayout(pieceLength: 16, files: files([5, 0, 3, -8, 20, 0, 4]))
        #expect(layout.pieceCount == 3)
        #expect(layout.length(ofPiece: 2) == 8)
        #expect(layout.spans(piece: 0, offset: 0, length: 16) == [
            span(0, 0, 5, at: 0), span(2, 0, 3, at: 5), span(3, 0, 8, at: 8, padding: true),
        ])
        #expect(layout.spans(piece: 0, offset: 4, length: 6) == [
            span(0, 4, 1, at: 0), span(2, 0, 3, at: 1), span(3, 0, 2, at: 4, padding: true),
        ])
        #expect(layout.spans(piece: 1, offset: 0, length: 16) == [span(4, 0, 16, at: 0)])
        #expect(layout.spans(piece: 2, offset: 0, length: 8) == [span(4, 16, 4, at: 0), span(6, 0, 4, at: 4)])
        // A range across a piece end is not a request; the piece space form takes any range.
        #expect(layout.spans(piece: 1, offset: 4, length: 20) == [])
        #expect(layout.spans(in: 10..<36) == [span(3, 2, 6, at: 0, padding: true), span(4, 0, 20, at: 6)])
        #expect(layout.spans(in: 38..<100) == [span(6, 2, 2, at: 0)])
        #expect(layout.spans(in: 40..<41) == [])

        #expect(layout.fileIndex(at: 5) == 2)
        #expect(layout.fileIndex(at: 8) == 3)
        #expect(layout.fileIndex(at: 36) == 6)
        #expect(layout.fileIndex(at: 40) == nil)
    }

    @Test func piecesOfFilesAndFilesOfPieces() {
        let layout = FileLayout(pieceLength: 16, files: files([5, 0, 3, -8, 20, 0, 4]))
        #expect((0..<7).map { layout.pieces(coveringFile: $0) } == [0..<1, 0..<0, 0..<1, 0..<1, 1..<3, 2..<2, 2..<3])
        #expect(layout.pieces(coveringFile: 7) == 0..<0)
        #expect(layout.fileIndices(inPiece: 0) == 0..<4)
        #expect(layout.fileIndices(inPiece: 1) == 4..<5)
        #expect(layout.fileIndices(inPiece: 2) == 4..<7)
        #expect(layout.fileIndices(inPiece: 3) == 0..<0)

        var have = Bitfield(count: 3)
        have.set(1)
        #expect(!layout.isComplete(file: 4, in: have))
        #expect(layout.isComplete(file: 1, in: have), "an empty file needs no piece")
        have.set(2)
        #expect(layout.isComplete(file: 4, in: have))
        #expect(layout.isComplete(file: 6, in: have))
        #expect(!layout.isComplete(file: 0, in: have))

        // Files that end exactly at piece boundaries, and an empty file at the very end.
        let aligned = FileLayout(pieceLength: 10, files: files([10, 20, 0]))
        #expect((0..<3).map { aligned.pieces(coveringFile: $0) } == [0..<1, 1..<3, 3..<3])
        #expect(aligned.fileIndices(inPiece: 1) == 1..<2)
        #expect(aligned.fileIndices(inPiece: 2) == 1..<2)
    }

    /// Random layouts (padding, empty files, pieces from 1 byte up) and random ranges against the byte-by-
    /// byte reference; the pieces of every file against the bytes of every piece.
    @Test func spansMatchReference() {
        var generator = SeededGenerator(seed: 47)
        for _ in 0..<100 {
            let lengths = (0..<(1 + generator.next(upTo: 8))).map { _ -> Int64 in
                let length = Int64(generator.next(upTo: 4) == 0 ? 0 : generator.next(upTo: 40))
                return generator.next(upTo: 5) == 0 ? -length : length
            }
            let placed = files(lengths)
            let layout = FileLayout(pieceLength: 1 + generator.next(upTo: 24), files: placed)
            guard layout.totalLength > 0 else { continue }
            let owners = owners(placed)
            for _ in 0..<20 {
                let start = Int64(generator.next(upTo: Int(layout.totalLength)))
                let end = start + 1 + Int64(generator.next(upTo: Int(layout.totalLength - start)))
                #expect(layout.spans(in: start..<end) == referenceSpans(placed, owners, start..<end), "\(lengths) \(start)..<\(end)")
            }
            for piece in 0..<layout.pieceCount {
                let bytes = layout.range(ofPiece: piece)
                #expect(bytes.map { layout.fileIndex(at: $0) } == owners[Int(bytes.lowerBound)..<Int(bytes.upperBound)].map { $0 })
                let inPiece = Set(owners[Int(bytes.lowerBound)..<Int(bytes.upperBound)].compactMap { $0 })
                #expect(inPiece == Set(layout.fileIndices(inPiece: piece).filter { placed[$0].length > 0 }))
                for index in placed.indices {
                    #expect(layout.pieces(coveringFile: index).contains(piece) == inPiece.contains(index))
                }
            }
        }
    }

    /// A v2-only torrent (BEP 52): each file starts at a piece boundary, and the rest of a file's last piece
    /// belongs to no file: it reads as zeros, as padding does.
    @Test func v2FilesStartAtPieceBoundaries() throws {
        let root: BencodeValue = .string(Array(repeating: 9, count: 32))
        let tree: BencodeValue = [
            "a": ["": ["length": 100, "pieces root": root]],
            "b": ["": ["length": 0]],
            "c": ["": ["length": 40000, "pieces root": root]],
        ]
        let torrent: BencodeValue = [
            "info": ["name": "v2", "piece length": 16384, "meta version": 2, "file tree": tree]
        ]
        let info = try Metainfo(parsing: torrent.encoded).info
        let layout = FileLayout(info)
        #expect(layout.files.map(\.offset) == [0, 16384, 16384])
        #expect(layout.totalLength == 16384 + 40000)
        #expect(layout.pieceCount == 4)
        #expect(layout.spans(piece: 0, offset: 0, length: 16384) == [span(0, 0, 100, at: 0), span(nil, 0, 16284, at: 100, padding: true)])
        #expect(layout.spans(piece: 1, offset: 0, length: 16384) == [span(2, 0, 16384, at: 0)])
        #expect(layout.length(ofPiece: 3) == 40000 - 2 * 16384)
        #expect(layout.spans(piece: 3, offset: 0, length: 7232) == [span(2, 32768, 7232, at: 0)])
        #expect(layout.fileIndex(at: 200) == nil)
        #expect(layout.pieces(coveringFile: 0) == 0..<1)
        #expect(layout.pieces(coveringFile: 1) == 1..<1)
        #expect(layout.pieces(coveringFile: 2) == 1..<4)
        #expect(layout.fileIndices(inPiece: 0) == 0..<1)
    }

    @Test func layoutOfAnInfoDictionary() throws {
        let info = try InfoDictionary(
            name: "top", pieceLength: 16384, pieceHashes: Array(repeating: 0, count: 60),
            files: [(try TorrentPath(validating: ["x"]), 20000), (try TorrentPath(validating: ["y"]), 20000)],
            isDirectory: true)
        let layout = FileLayout(info)
        #expect(layout.pieceCount == info.pieceCount)
        #expect(layout.totalLength == info.totalLength)
        #expect(layout.spans(piece: 1, offset: 0, length: 16384) == [span(0, 16384, 3616, at: 0), span(1, 0, 12768, at: 3616)])
    }

    /// 100 000 files, a third of them empty: lookups are binary searches, so walking every piece's spans
    /// is linear in pieces plus files, and the walk covers each file exactly once, in order.
    @Test func hundredThousandFiles() {
        var generator = SeededGenerator(seed: 100_000)
        let path = try! TorrentPath(validating: ["t", "f"])
        var offset: Int64 = 0
        let placed = (0..<100_000).map { _ -> TorrentFile in
            let length = Int64(generator.next(upTo: 3) == 0 ? 0 : generator.next(upTo: 70_000))
            defer { offset += length }
            return TorrentFile(path: path, length: length, offset: offset)
        }
        let layout = FileLayout(pieceLength: 1 << 20, files: placed)
        var covered = [Int64](repeating: 0, count: placed.count)
        var lastFile = -1
        for piece in 0..<layout.pieceCount {
            var expectedOffset = 0
            layout.forEachSpan(in: layout.range(ofPiece: piece)) { span in
                let index = span.fileIndex!
                if span.offsetInRange != expectedOffset || index < lastFile || span.offsetInFile != covered[index] {
                    Issue.record("piece \(piece): \(span)")
                }
                expectedOffset += span.length
                covered[index] += Int64(span.length)
                lastFile = index
            }
            #expect(expectedOffset == layout.length(ofPiece: piece))
        }
        #expect(covered == placed.map(\.length))
        for _ in 0..<1000 {
            let index = generator.next(upTo: placed.count)
            guard placed[index].length > 0 else { continue }
            let byte = placed[index].offset + Int64(generator.next(upTo: Int(placed[index].length)))
            #expect(layout.fileIndex(at: byte) == index)
            #expect(layout.pieces(coveringFile: index).contains(Int(byte >> 20)))
        }
    }
}
