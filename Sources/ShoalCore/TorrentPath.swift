/// A relative file path from a torrent, checked so that it can never leave the download directory.
///
/// Paths in a torrent come from strangers. Before one can touch the disk it must be a list of
/// plain names: no `..` (escape upwards), no `/` inside a component (absolute paths, hidden
/// separators), no empty or `.` components, no NUL or other control characters (terminal tricks,
/// truncation in C APIs), no component longer than 255 bytes (the limit of every common file system).
/// A path that breaks a rule is refused with ``TorrentPathError``; it is never silently rewritten,
/// so two hostile names cannot be mapped onto one file.
public struct TorrentPath: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The longest component in bytes (NAME_MAX on Linux, and the limit of ext4, XFS, Btrfs, NTFS, APFS).
    public static let maxComponentBytes = 255
    /// The most components in one path.
    public static let maxDepth = 256

    /// The names from the top directory down to the file.
    public let components: [String]

    /// Checks every component; throws for the first that breaks a rule.
    public init(validating components: [String]) throws(TorrentPathError) {
        guard !components.isEmpty else { throw TorrentPathError(.empty, component: "") }
        guard components.count <= Self.maxDepth else {
            throw TorrentPathError(.tooDeep(components.count), component: components[Self.maxDepth])
        }
        for component in components {
            try Self.validate(component: component)
        }
        self.components = components
    }

    /// Checks one name (a file or directory name, or a torrent's `name`).
    public static func validate(component: String) throws(TorrentPathError) {
        if component.isEmpty { throw TorrentPathError(.emptyComponent, component: component) }
        if component == "." { throw TorrentPathError(.currentDirectory, component: component) }
        if component == ".." { throw TorrentPathError(.parentDirectory, component: component) }
        let byteCount = component.utf8.count
        if byteCount > maxComponentBytes { throw TorrentPathError(.componentTooLong(byteCount), component: component) }
        for byte in component.utf8 {
            if byte == UInt8(ascii: "/") { throw TorrentPathError(.separator, component: component) }
            if byte < 0x20 || byte == 0x7F { throw TorrentPathError(.controlCharacter(byte), component: component) }
        }
        // C1 control characters (U+0080...U+009F) can drive terminals as well as C0 ones.
        for scalar in component.unicodeScalars where (0x80...0x9F).contains(scalar.value) {
            throw TorrentPathError(.controlCharacter(UInt8(scalar.value)), component: component)
        }
    }

    /// The path with `/` between components.
    public var string: String { components.joined(separator: "/") }

    public var description: String { string }

    /// A path with `prefix` put in front (the torrent's top directory in front of a file's path).
    public func prepending(_ prefix: String) throws(TorrentPathError) -> TorrentPath {
        try TorrentPath(validating: [prefix] + components)
    }

    /// Orders as raw UTF-8 bytes of the joined path, which is the order mktorrent writes files in.
    public static func < (lhs: TorrentPath, rhs: TorrentPath) -> Bool {
        lhs.string.utf8.lexicographicallyPrecedes(rhs.string.utf8)
    }
}

/// Why a path from a torrent was refused.
public struct TorrentPathError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case empty
        case emptyComponent
        case currentDirectory
        case parentDirectory
        case separator
        case controlCharacter(UInt8)
        case componentTooLong(Int)
        case tooDeep(Int)
    }

    public var reason: Reason
    /// The offending component, as given.
    public var component: String

    public init(_ reason: Reason, component: String) {
        self.reason = reason
        self.component = component
    }

    public var description: String {
        let shown = Self.printable(component)
        switch reason {
        case .empty: return "empty path"
        case .emptyComponent: return "empty path component"
        case .currentDirectory: return "path component \".\""
        case .parentDirectory: return "path component \"..\" would leave the download directory"
        case .separator: return "path component \(shown) contains '/'"
        case .controlCharacter(let byte): return "path component \(shown) contains control character \(byte)"
        case .componentTooLong(let count):
            return "path component of \(count) bytes is over the limit of \(TorrentPath.maxComponentBytes)"
        case .tooDeep(let count): return "path of \(count) components is over the limit of \(TorrentPath.maxDepth)"
        }
    }

    /// The component quoted, with control characters escaped so that printing it is harmless.
    static func printable(_ text: String) -> String {
        "\"" + PrintableText.escaped(text, limit: 80) + "\""
    }
}
