#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ShoalCore

/// The files that make up new content: a single file, or every regular file below a directory.
public struct ScannedContent: Sendable {
    /// One file: where it is on disk and where it goes in the torrent.
    public struct File: Sendable, Hashable {
        /// Path below the top directory (for a single file: its name).
        public var path: TorrentPath
        /// Path on disk.
        public var location: String
        public var length: Int64
    }

    /// The last component of the scanned path: the torrent's default name.
    public var name: String
    /// Whether the scanned path is a directory (a multi-file torrent, even with one file inside).
    public var isDirectory: Bool
    /// The files, ordered byte-wise by their path below the top directory, as mktorrent orders them.
    public var files: [File]

    /// The sum of the file lengths.
    public var totalLength: Int64 { files.reduce(0) { $0 + $1.length } }
}

/// Walks a file or a directory tree for `shoal create`.
///
/// Like mktorrent: symbolic links are followed, only regular files are taken, empty files are
/// kept, hidden files are kept, and files are ordered by the bytes of their path below the top
/// directory. That makes the info-hash the same as mktorrent's for the same content and options.
/// Names are checked as a downloader will check them, so that a torrent is never made that other
/// clients must refuse (a newline in a file name, a name over 255 bytes).
public enum ContentScanner {
    /// The most files one torrent may list.
    public static let maxFiles = 1_000_000

    public static func scan(_ location: String) throws(StorageError) -> ScannedContent {
        let trimmed = trimTrailingSlashes(location)
        var info = stat()
        guard stat(trimmed, &info) == 0 else { throw StorageError.system(errno, operation: "stat", path: trimmed) }
        var name = trimmed.split(separator: "/").last.map(String.init) ?? trimmed
        if name == "." || name == "..", let resolved = realpath(trimmed, nil) {
            // `shoal create .` names the torrent after the directory itself.
            name = String(cString: resolved).split(separator: "/").last.map(String.init) ?? name
            free(resolved)
        }
        do {
            try TorrentPath.validate(component: name)
        } catch {
            throw StorageError(code: .invalidArgument, path: trimmed, message: "unusable name: \(error)")
        }
        if isRegular(info) {
            let path = try torrentPath([name], location: trimmed)
            return ScannedContent(
                name: name, isDirectory: false,
                files: [.init(path: path, location: trimmed, length: Int64(info.st_size))])
        }
        guard isDirectory(info) else {
            throw StorageError(code: .invalidArgument, path: trimmed, message: "neither a regular file nor a directory")
        }
        var files: [ScannedContent.File] = []
        var ancestors: Set<DeviceInode> = [DeviceInode(info)]
        try walk(directory: trimmed, components: [], ancestors: &ancestors, into: &files)
        guard !files.isEmpty else {
            throw StorageError(code: .invalidArgument, path: trimmed, message: "no files to put in a torrent")
        }
        files.sort { $0.path < $1.path }
        return ScannedContent(name: name, isDirectory: true, files: files)
    }

    private struct DeviceInode: Hashable {
        var device: UInt64
        var inode: UInt64
        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    private static func walk(
        directory: String, components: [String], ancestors: inout Set<DeviceInode>,
        into files: inout [ScannedContent.File]
    ) throws(StorageError) {
        guard let handle = opendir(directory) else {
            throw StorageError.system(errno, operation: "opendir", path: directory)
        }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let location = directory + "/" + name
            var info = stat()
            guard stat(location, &info) == 0 else {
                // A dangling symbolic link is skipped, as mktorrent does; anything else is an error.
                var linkInfo = stat()
                if lstat(location, &linkInfo) == 0 && (linkInfo.st_mode & S_IFMT) == S_IFLNK { continue }
                throw StorageError.system(errno, operation: "stat", path: location)
            }
            if isRegular(info) {
                guard files.count < maxFiles else {
                    throw StorageError(code: .invalidArgument, path: location, message: "more than \(maxFiles) files")
                }
                let path = try torrentPath(components + [name], location: location)
                files.append(.init(path: path, location: location, length: Int64(info.st_size)))
            } else if isDirectory(info) {
                let key = DeviceInode(info)
                // A link back to a directory above would loop forever.
                guard ancestors.insert(key).inserted else { continue }
                try walk(directory: location, components: components + [name], ancestors: &ancestors, into: &files)
                ancestors.remove(key)
            }
        }
    }

    private static func torrentPath(_ components: [String], location: String) throws(StorageError) -> TorrentPath {
        do {
            return try TorrentPath(validating: components)
        } catch {
            throw StorageError(code: .invalidArgument, path: location, message: "unusable name: \(error)")
        }
    }

    private static func isRegular(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFREG }
    private static func isDirectory(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFDIR }

    private static func trimTrailingSlashes(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
