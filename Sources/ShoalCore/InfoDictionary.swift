import ShoalBencode

/// The `info` dictionary of a torrent (BEP 3; BEP 47 attributes; BEP 52 file tree): what the
/// info-hash identifies.
public struct InfoDictionary: Hashable, Sendable {
    /// The suggested name: the file's name (single file) or the top directory's (several files).
    public var name: String
    /// Bytes per piece (the last piece may be shorter).
    public var pieceLength: Int
    /// The v1 `pieces` string: 20 bytes of SHA-1 per piece. Empty in a v2-only torrent.
    public var pieceHashes: [UInt8]
    /// The files in the order of the v1 piece space (for a v2-only torrent: the file tree's order,
    /// each file starting at a piece boundary). Padding files included and marked.
    public var files: [TorrentFile]
    /// True when the torrent is a directory of files (`files` in v1), false for a single file.
    public var isDirectory: Bool
    /// BEP 27: peers only from the torrent's trackers; no DHT, PEX or LSD.
    public var isPrivate: Bool
    /// The `source` field, which private trackers use to make cross-seeded info-hashes distinct.
    public var source: String?
    /// `meta version` (BEP 52): 2 for v2 and hybrid torrents, 1 otherwise.
    public var metaVersion: Int
    /// The v2 file tree's files (path, length, pieces root), for v2 and hybrid torrents.
    public var fileTree: [TorrentFile]?

    /// The largest piece length accepted when reading.
    public static let maxPieceLength = 1 << 30
    /// The smallest piece length of v2 torrents (BEP 52), and a block's length.
    public static let blockLength = 16 << 10

    /// A v1 info dictionary for new content. `files` are relative to the top directory when
    /// `isDirectory` is true; a single file's path is its name.
    public init(
        name: String, pieceLength: Int, pieceHashes: [UInt8], files: [(path: TorrentPath, length: Int64)],
        isDirectory: Bool, isPrivate: Bool = false, source: String? = nil
    ) throws(TorrentPathError) {
        try TorrentPath.validate(component: name)
        self.name = name
        self.pieceLength = pieceLength
        self.pieceHashes = pieceHashes
        var offset: Int64 = 0
        var placed: [TorrentFile] = []
        for file in files {
            let path = isDirectory ? try file.path.prepending(name) : try TorrentPath(validating: [name])
            placed.append(TorrentFile(path: path, length: file.length, offset: offset))
            offset += file.length
        }
        self.files = placed
        self.isDirectory = isDirectory
        self.isPrivate = isPrivate
        self.source = source
        self.metaVersion = 1
        self.fileTree = nil
    }

    /// The sum of all file lengths in the piece space, padding included.
    public var totalLength: Int64 {
        guard let last = files.last else { return 0 }
        return last.offset + last.length
    }

    /// The bytes of content: the sum of the files' lengths, padding left out.
    public var contentLength: Int64 {
        files.reduce(0) { $1.isPadding ? $0 : $0 + $1.length }
    }

    /// The number of pieces.
    public var pieceCount: Int {
        if !pieceHashes.isEmpty { return pieceHashes.count / 20 }
        return Int((totalLength + Int64(pieceLength) - 1) / Int64(pieceLength))
    }

    /// Whether the torrent has v1 piece hashes (v1 or hybrid).
    public var hasV1: Bool { !pieceHashes.isEmpty }
    /// Whether the torrent has a v2 file tree (v2 or hybrid).
    public var hasV2: Bool { fileTree != nil }

    /// The SHA-1 of piece `index`.
    public func pieceHash(_ index: Int) -> Digest20? {
        guard index >= 0, index < pieceHashes.count / 20 else { return nil }
        return Digest20(bytes: pieceHashes[(index * 20)..<(index * 20 + 20)])
    }

    /// The dictionary to encode for a v1 torrent: keys as mktorrent writes them, so that the same
    /// content and options give the same info-hash.
    public var bencodeValue: BencodeValue {
        var dictionary: [String: BencodeValue] = [
            "name": .text(name),
            "piece length": .integer(Int64(pieceLength)),
            "pieces": .string(pieceHashes),
        ]
        if isDirectory {
            dictionary["files"] = .list(files.map(Self.fileEntry))
        } else if let file = files.first {
            dictionary["length"] = .integer(file.length)
            if !file.attributes.isEmpty { dictionary["attr"] = .text(file.attributes.attr) }
        }
        if isPrivate { dictionary["private"] = 1 }
        if let source { dictionary["source"] = .text(source) }
        return .dictionary(dictionary)
    }

    private static func fileEntry(_ file: TorrentFile) -> BencodeValue {
        var entry: [String: BencodeValue] = [
            "length": .integer(file.length),
            "path": .list(file.path.components.dropFirst().map { .text($0) }),
        ]
        if !file.attributes.isEmpty { entry["attr"] = .text(file.attributes.attr) }
        if let target = file.symlinkTarget { entry["symlink path"] = .list(target.components.map { .text($0) }) }
        if let sha1 = file.sha1 { entry["sha1"] = .string(sha1.bytes) }
        return .dictionary(entry)
    }
}

// MARK: - Reading

extension InfoDictionary {
    /// Reads and checks an info dictionary. Every path is sanitised; sizes and counts must agree.
    init(parsing info: MetainfoField, warnings: inout [String]) throws(MetainfoError) {
        let nameField = try info.required("name", preferring: "name.utf-8")
        name = try nameField.text()
        if !nameField.isValidUTF8 { warnings.append("info.name is not UTF-8; invalid bytes replaced") }
        do { try TorrentPath.validate(component: name) } catch { throw nameField.error(.unsafePath(error)) }

        let pieceLengthField = try info.required("piece length")
        let pieceLength = try pieceLengthField.integer()
        guard pieceLength > 0, pieceLength <= Self.maxPieceLength else {
            throw pieceLengthField.error(.invalid("piece length \(pieceLength) is out of range"))
        }
        self.pieceLength = Int(pieceLength)

        metaVersion = 1
        if let versionField = info.child("meta version") {
            let version = try versionField.integer()
            guard version == 1 || version == 2 else {
                throw versionField.error(.invalid("unsupported meta version \(version)"))
            }
            metaVersion = Int(version)
        }

        isPrivate = try info.child("private")?.integer() == 1
        source = try info.child("source")?.text()

        let hasV1Layout = info.child("files") != nil || info.child("length") != nil
        if let piecesField = info.child("pieces") {
            pieceHashes = Array(try piecesField.bytes())
            guard pieceHashes.count % 20 == 0 else {
                throw piecesField.error(.invalid("pieces is \(pieceHashes.count) bytes, not a multiple of 20"))
            }
        } else if metaVersion == 2 && !hasV1Layout {
            pieceHashes = []
        } else {
            throw MetainfoError(.missing, field: "info.pieces", offset: info.node.span.lowerBound)
        }

        var v1Layout: (files: [TorrentFile], isDirectory: Bool)? = nil
        if hasV1Layout { v1Layout = try Self.readV1Files(info, name: name) }

        fileTree = nil
        if metaVersion == 2 {
            guard Int(pieceLength).nonzeroBitCount == 1, pieceLength >= Self.blockLength else {
                throw pieceLengthField.error(.invalid("v2 piece length \(pieceLength) is not a power of two of at least 16 KiB"))
            }
            let treeField = try info.required("file tree").dictionary()
            var treeFiles: [TorrentFile] = []
            try Self.readTree(treeField, prefix: [], into: &treeFiles)
            guard !treeFiles.isEmpty else { throw treeField.error(.invalid("empty file tree")) }
            // A tree of one file at its root is a single-file torrent, unless the v1 part says the
            // torrent is a directory (libtorrent makes such hybrids for a folder holding one file).
            let isDirectory = v1Layout?.isDirectory ?? !(treeFiles.count == 1 && treeFiles[0].path.components.count == 1)
            fileTree = try Self.placeV2(
                treeFiles, under: isDirectory ? name : nil, pieceLength: Int64(pieceLength), field: treeField)
        }

        if let v1Layout {
            (files, isDirectory) = v1Layout
        } else if let fileTree {
            files = fileTree
            isDirectory = fileTree.count > 1 || fileTree[0].path.components.count > 1
            // A v2 single-file torrent's file is named by its tree key, and so is the torrent
            // (as libtorrent reads it).
            if !isDirectory { name = fileTree[0].path.components[0] }
        } else {
            throw MetainfoError(.missing, field: "info.length", offset: info.node.span.lowerBound)
        }

        let total = files.last.map { $0.offset + $0.length } ?? 0
        guard total > 0 else { throw info.error(.invalid("torrent holds no data")) }
        if hasV1 {
            let expected = (total + pieceLength - 1) / pieceLength
            guard expected == pieceHashes.count / 20 else {
                throw info.child("pieces")!.error(
                    .invalid("\(pieceHashes.count / 20) piece hashes for \(total) bytes in pieces of \(pieceLength) (expected \(expected))"))
            }
        }
        if let fileTree, hasV1Layout {
            let v1 = files.filter { !$0.isPadding }
            let agree = v1.elementsEqual(fileTree) { $0.path == $1.path && $0.length == $1.length }
            guard agree else { throw info.error(.invalid("hybrid torrent's v1 file list and v2 file tree differ")) }
        }
        try Self.checkDistinctPaths(files, field: info)
    }

    private static func readV1Files(_ info: MetainfoField, name: String) throws(MetainfoError) -> ([TorrentFile], Bool) {
        guard let filesField = info.child("files") else {
            let length = try fileLength(info)
            var file = TorrentFile(path: try path([name], field: info.child("name")!), length: length)
            try readAttributes(info, into: &file)
            return ([file], false)
        }
        let entries = try filesField.list()
        guard !entries.isEmpty else { throw filesField.error(.invalid("empty file list")) }
        var files: [TorrentFile] = []
        files.reserveCapacity(entries.count)
        var offset: Int64 = 0
        for entry in entries {
            _ = try entry.dictionary()
            let length = try fileLength(entry)
            let pathField = try entry.required("path", preferring: "path.utf-8")
            let components = try pathField.list().map { (component) throws(MetainfoError) in try component.text() }
            guard !components.isEmpty else { throw pathField.error(.unsafePath(TorrentPathError(.empty, component: ""))) }
            var file = TorrentFile(path: try path([name] + components, field: pathField), length: length, offset: offset)
            try readAttributes(entry, into: &file)
            let (sum, overflow) = offset.addingReportingOverflow(length)
            guard !overflow else { throw entry.error(.invalid("total length overflows")) }
            offset = sum
            files.append(file)
        }
        return (files, true)
    }

    /// A file entry's `length`: a non-negative integer, which a symlink may omit (BEP 47; libtorrent
    /// omits it in v2 file trees).
    private static func fileLength(_ entry: MetainfoField) throws(MetainfoError) -> Int64 {
        guard let lengthField = entry.child("length") else {
            if FileAttributes(attr: try entry.child("attr")?.bytes() ?? []).contains(.symlink) { return 0 }
            return try entry.required("length").integer()
        }
        let length = try lengthField.integer()
        guard length >= 0 else { throw lengthField.error(.invalid("negative length \(length)")) }
        return length
    }

    private static func readAttributes(_ entry: MetainfoField, into file: inout TorrentFile) throws(MetainfoError) {
        file.attributes = FileAttributes(attr: try entry.child("attr")?.bytes() ?? [])
        if let targetField = entry.child("symlink path"), file.attributes.contains(.symlink) {
            let components = try targetField.list().map { (component) throws(MetainfoError) in try component.text() }
            file.symlinkTarget = try path(components, field: targetField)
        }
        if let sha1Field = entry.child("sha1") {
            guard let digest = Digest20(bytes: try sha1Field.bytes()) else {
                throw sha1Field.error(.invalid("sha1 is not 20 bytes"))
            }
            file.sha1 = digest
        }
    }

    /// Walks a BEP 52 file tree: directories are dictionaries of names, a file is `{"": {length, pieces root}}`.
    private static func readTree(_ node: MetainfoField, prefix: [String], into files: inout [TorrentFile]) throws(MetainfoError) {
        for (key, child) in try node.entries() {
            _ = try child.dictionary()
            let name = String(decoding: key.bytes ?? [], as: UTF8.self)
            if name.isEmpty {
                guard prefix.count > 0, node.node.count == 1 else {
                    throw child.error(.invalid("file entry mixed with directory entries"))
                }
                let length = try fileLength(child)
                var file = TorrentFile(path: try path(prefix, field: child), length: length)
                try readAttributes(child, into: &file)
                if length > 0 {
                    let rootField = try child.required("pieces root")
                    guard let root = Digest32(bytes: try rootField.bytes()) else {
                        throw rootField.error(.invalid("pieces root is not 32 bytes"))
                    }
                    file.piecesRoot = root
                }
                files.append(file)
            } else {
                try readTree(child, prefix: prefix + [name], into: &files)
            }
        }
    }

    /// Places v2 files in the piece space (each starts at a piece boundary), under the torrent's
    /// top directory when there is one.
    private static func placeV2(
        _ treeFiles: [TorrentFile], under directory: String?, pieceLength: Int64, field: MetainfoField
    ) throws(MetainfoError) -> [TorrentFile] {
        var offset: Int64 = 0
        var placed: [TorrentFile] = []
        for var file in treeFiles {
            if let directory { file.path = try path([directory] + file.path.components, field: field) }
            file.offset = offset
            let pieces = (file.length + pieceLength - 1) / pieceLength
            let (span, overflowA) = pieces.multipliedReportingOverflow(by: pieceLength)
            let (next, overflowB) = offset.addingReportingOverflow(span)
            guard !overflowA, !overflowB else { throw field.error(.invalid("total length overflows")) }
            offset = next
            placed.append(file)
        }
        return placed
    }

    private static func path(_ components: [String], field: MetainfoField) throws(MetainfoError) -> TorrentPath {
        do { return try TorrentPath(validating: components) } catch { throw field.error(.unsafePath(error)) }
    }

    /// Two files with one path, or a file where another needs a directory, cannot both be stored.
    private static func checkDistinctPaths(_ files: [TorrentFile], field: MetainfoField) throws(MetainfoError) {
        // Names compare as bytes: Linux file systems keep "é" (U+00E9) and "é" (e, U+0301) apart,
        // while Swift's String equality would fold them.
        var filePaths: Set<[UInt8]> = []
        var directories: Set<[UInt8]> = []
        for file in files where !file.isPadding {
            guard filePaths.insert(Array(file.path.string.utf8)).inserted else {
                throw field.error(.invalid("two files named \(TorrentPathError.printable(file.path.string))"))
            }
            var prefix: [UInt8] = []
            for component in file.path.components.dropLast() {
                if !prefix.isEmpty { prefix.append(UInt8(ascii: "/")) }
                prefix.append(contentsOf: component.utf8)
                directories.insert(prefix)
            }
        }
        if let clash = filePaths.first(where: directories.contains) {
            throw field.error(.invalid("\(TorrentPathError.printable(String(decoding: clash, as: UTF8.self))) is both a file and a directory"))
        }
    }
}
