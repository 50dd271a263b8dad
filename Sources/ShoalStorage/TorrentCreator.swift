import ShoalCore

/// Makes a v1 torrent from files on disk: scan, choose a piece length, hash on all cores.
public struct TorrentCreator: Sendable {
    /// What goes into the torrent besides the content.
    public struct Options: Sendable {
        /// Bytes per piece; nil chooses one from the content's size (``defaultPieceLength(for:)``).
        public var pieceLength: Int?
        /// Tracker tiers (BEP 12).
        public var trackers: [[String]]
        /// Web seeds (BEP 19).
        public var webSeeds: [String]
        /// BEP 27 private flag.
        public var isPrivate: Bool
        public var comment: String?
        /// The `source` field (inside the info dictionary, so it changes the info-hash).
        public var source: String?
        /// The torrent's name instead of the file or directory name.
        public var name: String?
        public var createdBy: String?
        /// Seconds since 1970; nil leaves the field out.
        public var creationDate: Int64?
        /// Hashing threads; nil uses every core.
        public var threads: Int?

        public init(
            pieceLength: Int? = nil, trackers: [[String]] = [], webSeeds: [String] = [], isPrivate: Bool = false,
            comment: String? = nil, source: String? = nil, name: String? = nil, createdBy: String? = nil,
            creationDate: Int64? = nil, threads: Int? = nil
        ) {
            self.pieceLength = pieceLength
            self.trackers = trackers
            self.webSeeds = webSeeds
            self.isPrivate = isPrivate
            self.comment = comment
            self.source = source
            self.name = name
            self.createdBy = createdBy
            self.creationDate = creationDate
            self.threads = threads
        }
    }

    public var options: Options

    public init(options: Options) {
        self.options = options
    }

    /// The smallest piece length allowed: one block (BEP 52 and every client's request size).
    public static let minPieceLength = 16 << 10
    /// The largest piece length chosen automatically.
    public static let maxDefaultPieceLength = 16 << 20

    /// A piece length for `totalLength` bytes: the smallest power of two from 16 KiB to 16 MiB that
    /// keeps the torrent at or under 2048 pieces (so the `pieces` string stays under 40 KiB, as
    /// libtorrent aims for, while small content still gets pieces small enough to swarm well).
    public static func defaultPieceLength(for totalLength: Int64) -> Int {
        var length = minPieceLength
        while length < maxDefaultPieceLength && (totalLength + Int64(length) - 1) / Int64(length) > 2048 {
            length *= 2
        }
        return length
    }

    /// Checks a piece length given by a user: a positive multiple of 16 KiB, at most 1 GiB.
    public static func validate(pieceLength: Int) throws(StorageError) {
        guard pieceLength >= minPieceLength, pieceLength % minPieceLength == 0,
            pieceLength <= InfoDictionary.maxPieceLength
        else {
            throw StorageError(
                code: .invalidArgument,
                message: "piece length \(pieceLength) is not a multiple of 16 KiB between 16 KiB and 1 GiB")
        }
    }

    /// Scans `location`, hashes its pieces and returns the torrent. `progress` receives the bytes
    /// hashed so far (from worker threads) and the total.
    public func create(
        from location: String, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) throws(StorageError) -> Metainfo {
        let content = try ContentScanner.scan(location)
        return try create(from: content, progress: progress)
    }

    /// Hashes already scanned content and returns the torrent.
    public func create(
        from content: ScannedContent, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) throws(StorageError) -> Metainfo {
        let total = content.totalLength
        guard total > 0 else {
            throw StorageError(code: .invalidArgument, message: "nothing to share: every file is empty")
        }
        let pieceLength = options.pieceLength ?? Self.defaultPieceLength(for: total)
        try Self.validate(pieceLength: pieceLength)
        let name = options.name ?? content.name

        let hasher = PieceHasher(pieceLength: pieceLength, threads: options.threads)
        let hashedFiles = content.files.map { HashedFile(path: $0.location, length: $0.length) }
        var report: (@Sendable (Int64) -> Void)? = nil
        if let progress {
            report = { done in progress(done, total) }
        }
        let pieces = try hasher.hashPieces(of: hashedFiles, progress: report)

        let info: InfoDictionary
        do {
            info = try InfoDictionary(
                name: name, pieceLength: pieceLength, pieceHashes: pieces,
                files: content.files.map { (path: $0.path, length: $0.length) }, isDirectory: content.isDirectory,
                isPrivate: options.isPrivate, source: options.source)
        } catch {
            throw StorageError(code: .invalidArgument, message: "unusable name: \(error)")
        }
        return Metainfo(
            info: info, trackers: options.trackers, webSeeds: options.webSeeds, comment: options.comment,
            createdBy: options.createdBy, creationDate: options.creationDate)
    }
}
