/// The piece space of a torrent and how it maps onto files: what the engine needs to turn a block of a
/// piece into writes and reads of files (BEP 3 "info dictionary": pieces run across file boundaries).
///
/// The piece space is the concatenation of the files in order. Its pieces are `pieceLength` bytes except
/// the last, which may be short; the wire protocol requests pieces in blocks of 16 KiB
/// (``blockLength``), of which the last in a piece may be short too.
///
/// Two kinds of bytes in the piece space are never stored:
/// - the bytes of padding files (BEP 47): zeros that align the next file to a piece boundary; they are
///   never written and read as zeros;
/// - in a v2-only torrent, the gap after each file up to the next piece boundary (BEP 52: each file starts
///   at a piece boundary, and the rest of its last piece belongs to no file). They too read as zeros.
///
/// A ``FileSpan`` with ``FileSpan/isPadding`` set stands for either. Zero-length files hold no byte of the
/// piece space and never appear in a span.
///
/// Lookups are binary searches over the files' end offsets: cheap for torrents of 100 000 files.
public struct FileLayout: Hashable, Sendable {
    /// The length of a block: what a peer requests at a time (BEP 3 `request`), 16 KiB.
    public static let blockLength = InfoDictionary.blockLength

    /// The files, as in ``InfoDictionary/files``: paths, lengths, offsets in the piece space, attributes.
    public let files: [TorrentFile]
    /// How the piece space divides into pieces and blocks.
    public let geometry: PieceGeometry
    /// Bytes per piece (all but the last).
    public var pieceLength: Int { geometry.pieceLength }
    /// The length of the piece space, padding and v2 gaps included.
    public var totalLength: Int64 { geometry.totalLength }
    /// The number of pieces.
    public var pieceCount: Int { geometry.pieceCount }

    /// For each file, the offset just past its last byte in the piece space. Non-decreasing.
    private let ends: [Int64]

    /// The layout of `info`'s files (for v1 and hybrid torrents the v1 file list, padding files included;
    /// for v2-only torrents the file tree, each file at a piece boundary).
    public init(_ info: InfoDictionary) {
        self.init(pieceLength: info.pieceLength, files: info.files)
    }

    /// The layout of `files` placed at their ``TorrentFile/offset``s, in pieces of `pieceLength` bytes.
    ///
    /// The files must be in order and must not overlap (each starts at or after the end of the one
    /// before), which is how ``InfoDictionary`` places them; gaps between files read as zeros.
    public init(pieceLength: Int, files: [TorrentFile]) {
        precondition(pieceLength > 0, "piece length must be positive")
        var ends: [Int64] = []
        ends.reserveCapacity(files.count)
        var previousEnd: Int64 = 0
        for file in files {
            precondition(
                file.offset >= previousEnd && file.length >= 0,
                "files must be in order, must not overlap and must not have negative lengths")
            previousEnd = file.offset + file.length
            ends.append(previousEnd)
        }
        self.files = files
        self.ends = ends
        self.geometry = PieceGeometry(pieceLength: pieceLength, totalLength: previousEnd)
    }

    // MARK: Pieces and blocks

    /// The length of piece `piece`: ``pieceLength`` for all but the last, which may be shorter.
    /// Zero for an index out of range.
    public func length(ofPiece piece: Int) -> Int { geometry.length(ofPiece: piece) }

    /// Where piece `piece` lies in the piece space (empty for an index out of range).
    public func range(ofPiece piece: Int) -> Range<Int64> {
        guard piece >= 0, piece < pieceCount else { return 0..<0 }
        let start = Int64(piece) * Int64(pieceLength)
        return start..<(start + Int64(length(ofPiece: piece)))
    }

    /// The number of 16 KiB blocks in piece `piece` (the last may be short).
    public func blockCount(ofPiece piece: Int) -> Int { geometry.blockCount(ofPiece: piece) }

    /// The length of block `block` of piece `piece`: 16 KiB, or less for the last block of a piece.
    /// Zero for an index out of range.
    public func length(ofBlock block: Int, inPiece piece: Int) -> Int {
        let pieceBytes = length(ofPiece: piece)
        let start = block * Self.blockLength
        guard block >= 0, start < pieceBytes else { return 0 }
        return min(Self.blockLength, pieceBytes - start)
    }

    /// Whether `length` bytes at `offset` lie inside piece `piece` (a valid `request`, BEP 3; zero length
    /// is not).
    public func contains(piece: Int, offset: Int, length: Int) -> Bool {
        guard piece >= 0, piece < pieceCount, offset >= 0, length > 0 else { return false }
        let (end, overflow) = offset.addingReportingOverflow(length)
        return !overflow && end <= self.length(ofPiece: piece)
    }

    // MARK: Bytes to files

    /// The spans of files that `length` bytes at `offset` in piece `piece` cover, in order.
    /// Empty when the range is not inside the piece (see ``contains(piece:offset:length:)``).
    public func spans(piece: Int, offset: Int, length: Int) -> [FileSpan] {
        guard contains(piece: piece, offset: offset, length: length) else { return [] }
        let start = Int64(piece) * Int64(pieceLength) + Int64(offset)
        return spans(in: start..<(start + Int64(length)))
    }

    /// The spans of files that `range` of the piece space covers, in order. The part of `range` beyond
    /// the piece space is left out.
    public func spans(in range: Range<Int64>) -> [FileSpan] {
        var result: [FileSpan] = []
        forEachSpan(in: range) { result.append($0) }
        return result
    }

    /// Calls `body` with each span of files that `range` of the piece space covers, in order, without
    /// allocating: the form for the hot path (every block written or read).
    public func forEachSpan<E: Error>(in range: Range<Int64>, _ body: (FileSpan) throws(E) -> Void) throws(E) {
        let start = max(range.lowerBound, 0)
        let end = min(range.upperBound, totalLength)
        guard start < end else { return }
        var cursor = start
        var index = firstFile(endingAfter: start)
        while cursor < end && index < files.count {
            let fileStart = files[index].offset
            if fileStart >= end { break }
            if cursor < fileStart {
                // Bytes that belong to no file (the rest of a v2 file's last piece).
                try body(FileSpan(fileIndex: nil, offsetInFile: 0, length: Int(fileStart - cursor),
                              offsetInRange: Int(cursor - start), isPadding: true))
                cursor = fileStart
            }
            let spanEnd = min(end, ends[index])
            if spanEnd > cursor {
                try body(FileSpan(fileIndex: index, offsetInFile: cursor - fileStart, length: Int(spanEnd - cursor),
                              offsetInRange: Int(cursor - start), isPadding: files[index].isPadding))
                cursor = spanEnd
            }
            index += 1
        }
        if cursor < end {
            try body(FileSpan(fileIndex: nil, offsetInFile: 0, length: Int(end - cursor),
                          offsetInRange: Int(cursor - start), isPadding: true))
        }
    }

    /// The index of the file that holds byte `offset` of the piece space; nil for a byte of no file
    /// (a v2 gap) or out of range. Zero-length files hold no byte.
    public func fileIndex(at offset: Int64) -> Int? {
        guard offset >= 0, offset < totalLength else { return nil }
        let index = firstFile(endingAfter: offset)
        guard index < files.count, files[index].offset <= offset else { return nil }
        return index
    }

    // MARK: Files to pieces

    /// The pieces that hold bytes of file `fileIndex`: those to download for it, and those that must all be
    /// verified for it to be complete. Empty for a zero-length file (it needs no piece) and for an index
    /// out of range.
    public func pieces(coveringFile fileIndex: Int) -> Range<Int> {
        guard fileIndex >= 0, fileIndex < files.count else { return 0..<0 }
        let file = files[fileIndex]
        let first = Int(file.offset / Int64(pieceLength))
        guard file.length > 0 else {
            let at = min(first, pieceCount)
            return at..<at
        }
        let last = Int((ends[fileIndex] - 1) / Int64(pieceLength))
        return first..<(last + 1)
    }

    /// The indices of the files that hold bytes of piece `piece`, in order. The range may include
    /// zero-length files that lie inside the piece (they hold none of its bytes); padding files are
    /// included and marked. Empty for an index out of range.
    public func fileIndices(inPiece piece: Int) -> Range<Int> {
        let bytes = range(ofPiece: piece)
        guard !bytes.isEmpty else { return 0..<0 }
        let first = firstFile(endingAfter: bytes.lowerBound)
        let end = firstFile(startingAtOrAfter: bytes.upperBound, from: first)
        return first..<max(first, end)
    }

    /// Whether every piece of file `fileIndex` is set in `have` (a zero-length file always is).
    public func isComplete(file fileIndex: Int, in have: Bitfield) -> Bool {
        pieces(coveringFile: fileIndex).allSatisfy { have[$0] }
    }

    // MARK: Searching

    /// The first file whose end is past `offset` (that is, the first file that could hold byte `offset`):
    /// a binary search over the non-decreasing ends. `files.count` if none.
    private func firstFile(endingAfter offset: Int64) -> Int {
        var low = 0
        var high = ends.count
        while low < high {
            let middle = (low + high) / 2
            if ends[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The first file at or after `from` that starts at or after `offset` and is not empty before it.
    /// Files start in non-decreasing order, so a binary search.
    private func firstFile(startingAtOrAfter offset: Int64, from: Int) -> Int {
        var low = from
        var high = files.count
        while low < high {
            let middle = (low + high) / 2
            if files[middle].offset < offset { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// A run of bytes of the piece space inside one file (or inside no file, for the zeros of a v2 gap).
public struct FileSpan: Hashable, Sendable, CustomStringConvertible {
    /// The index in ``FileLayout/files``; nil for bytes that belong to no file (the rest of a v2-only
    /// torrent's file's last piece, BEP 52).
    public var fileIndex: Int?
    /// Where the span starts in its file (zero when ``fileIndex`` is nil).
    public var offsetInFile: Int64
    /// The number of bytes; always positive.
    public var length: Int
    /// Where the span starts in the range that was asked for (the sum of the lengths of the spans before).
    public var offsetInRange: Int
    /// True for bytes that are zeros by definition and are never written: a padding file (BEP 47) or a
    /// v2 gap. A writer skips them; a reader fills them with zeros.
    public var isPadding: Bool

    public init(fileIndex: Int?, offsetInFile: Int64, length: Int, offsetInRange: Int, isPadding: Bool) {
        self.fileIndex = fileIndex
        self.offsetInFile = offsetInFile
        self.length = length
        self.offsetInRange = offsetInRange
        self.isPadding = isPadding
    }

    public var description: String {
        let file = fileIndex.map { "file \($0)" } ?? "gap"
        return "\(file)\(isPadding ? " (padding)" : "") [\(offsetInFile), +\(length)) at \(offsetInRange)"
    }
}
