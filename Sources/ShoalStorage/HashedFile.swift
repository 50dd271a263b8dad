/// One file of a torrent's content, as the piece hasher reads it: where it is and how many bytes of it
/// belong to the torrent. A torrent's content is the concatenation of its files, in order (BEP 3, "info
/// dictionary": pieces run across file boundaries).
public struct HashedFile: Sendable, Hashable {
    /// An absolute path (a relative one is resolved against the current directory).
    public var path: String
    /// The number of bytes of this file in the torrent (zero is allowed). A file found shorter is an
    /// error; bytes past `length` are ignored.
    public var length: Int64

    public init(path: String, length: Int64) {
        self.path = path
        self.length = length
    }
}
