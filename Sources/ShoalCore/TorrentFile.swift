/// One file of a torrent: where it goes, how long it is, and where it lies in the piece space.
public struct TorrentFile: Hashable, Sendable {
    /// Path relative to the download directory (for a multi-file torrent its first component is
    /// the torrent's name, the top directory).
    public var path: TorrentPath
    public var length: Int64
    /// Offset of the file's first byte in the torrent's piece space.
    public var offset: Int64
    public var attributes: FileAttributes
    /// For a symlink (BEP 47): its target, relative to the torrent's top directory.
    public var symlinkTarget: TorrentPath?
    /// The optional whole-file SHA-1 of BEP 47.
    public var sha1: Digest20?
    /// The root of the file's merkle tree (BEP 52), in v2 and hybrid torrents.
    public var piecesRoot: Digest32?

    public init(
        path: TorrentPath, length: Int64, offset: Int64 = 0, attributes: FileAttributes = [],
        symlinkTarget: TorrentPath? = nil, sha1: Digest20? = nil, piecesRoot: Digest32? = nil
    ) {
        self.path = path
        self.length = length
        self.offset = offset
        self.attributes = attributes
        self.symlinkTarget = symlinkTarget
        self.sha1 = sha1
        self.piecesRoot = piecesRoot
    }

    /// A padding file (BEP 47): zeros that align the next file to a piece boundary, never written.
    public var isPadding: Bool { attributes.contains(.padding) }
}
