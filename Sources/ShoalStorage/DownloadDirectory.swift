import ShoalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory a torrent's files go in, and the one way into it: every file is reached component by
/// component with `openat` relative to a descriptor of the directory, never through a symbolic link.
///
/// A ``TorrentPath`` is already free of `..`, `/` and the like; what it cannot rule out is what is on disk.
/// Someone who can write to the download directory could plant a symbolic link where a torrent's file or
/// directory goes (`Movie/a.mkv -> ~/.bashrc`), and a client writing through it would overwrite a file
/// outside. So:
/// - each directory component is opened with `O_DIRECTORY | O_NOFOLLOW` (a link is refused, not followed)
///   and created with `mkdirat` when missing (and when creating is allowed);
/// - the file itself is opened with `O_NOFOLLOW` (a link, even a dangling one, is refused: `O_CREAT` would
///   otherwise create the link's target) and `O_NONBLOCK` (a FIFO planted there cannot block the open),
///   then checked with `fstat` to be a regular file;
/// - metadata is read with `fstatat(AT_SYMLINK_NOFOLLOW)` through the same walk.
///
/// The download directory itself is the user's choice and may be a symbolic link; it is opened once, when
/// first needed (and created then, for writing), and its descriptor is kept. Hard links are not refused:
/// cross-seeding setups use them on purpose, and only someone who can already read the target can make one.
final class DownloadDirectory: Sendable {
    /// The directory, as given.
    let path: String
    /// The descriptor of the directory, once opened.
    private let root = Mutex<Descriptor?>(nil)

    init(path: String) {
        self.path = path
    }

    /// The full path of a file of the torrent, for messages and for readers that take paths.
    func fullPath(_ relative: TorrentPath) -> String {
        path.hasSuffix("/") ? path + relative.string : path + "/" + relative.string
    }

    /// How a file is opened.
    enum Access {
        /// Read only; a file that is not there (or a directory on its way) gives nil.
        case read
        /// Read and write; `create` makes the file (and its directories) when missing, otherwise a missing
        /// file is an error. `permissions` apply to a file created.
        case write(create: Bool, permissions: mode_t)
    }

    /// Opens the file at `relative` as `access` says; nil when reading and the file is not there.
    /// The descriptor is of a regular file, opened close-on-exec.
    func open(_ relative: TorrentPath, _ access: Access) throws(StorageError) -> Descriptor? {
        let create: Bool
        if case .write(let allowed, _) = access { create = allowed } else { create = false }
        guard let parent = try parent(of: relative, create: create) else {
            if case .read = access { return nil }
            throw missing(relative)
        }
        let name = relative.components[relative.components.count - 1]
        var flags = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
        var permissions: mode_t = 0o644
        switch access {
        case .read:
            flags |= O_RDONLY
        case .write(let create, let mode):
            flags |= O_RDWR | (create ? O_CREAT : 0)
            permissions = mode
        }
        let descriptor = Self.retrying { openat(parent.raw, name, flags, permissions) }
        guard descriptor >= 0 else {
            let number = errno
            if number == ENOENT, case .read = access { return nil }
            if number == ENOENT { throw missing(relative) }
            throw refusal(number, at: parent, name: name, path: fullPath(relative), operation: "open")
        }
        let opened = Descriptor(descriptor)
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw StorageError.system(errno, operation: "fstat", path: fullPath(relative))
        }
        try requireRegular(info, relative)
        return opened
    }

    /// The status of the file at `relative` without following a link: nil when it (or a directory on its
    /// way) does not exist. A symbolic link, or a link on the way, is reported as what it is (never
    /// followed), so callers see "not a regular file".
    func status(_ relative: TorrentPath) throws(StorageError) -> stat? {
        let parent: Descriptor?
        do throws(StorageError) {
            parent = try self.parent(of: relative, create: false)
        } catch where error.errno == ELOOP || error.errno == ENOTDIR {
            return nil  // A link or a file where a directory goes: the file is not there for us.
        }
        guard let parent else { return nil }
        let name = relative.components[relative.components.count - 1]
        var info = stat()
        guard fstatat(parent.raw, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            let number = errno
            if number == ENOENT || number == ENOTDIR { return nil }
            throw StorageError.system(number, operation: "stat", path: fullPath(relative))
        }
        return info
    }

    /// The directory that holds `relative`, walked from the download directory without following links;
    /// nil when a directory is missing and `create` is false.
    func parent(of relative: TorrentPath, create: Bool) throws(StorageError) -> Descriptor? {
        guard var current = try rootDescriptor(create: create) else { return nil }
        for (depth, component) in relative.components.dropLast().enumerated() {
            var descriptor = Self.retrying { openat(current.raw, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if descriptor < 0 && errno == ENOENT && create {
                if mkdirat(current.raw, component, 0o755) != 0 && errno != EEXIST {
                    throw StorageError.system(errno, operation: "mkdir", path: partialPath(relative, depth + 1))
                }
                descriptor = Self.retrying { openat(current.raw, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            }
            guard descriptor >= 0 else {
                let number = errno
                if number == ENOENT && !create { return nil }
                throw refusal(
                    number, at: current, name: component, path: partialPath(relative, depth + 1),
                    operation: "open directory")
            }
            current = Descriptor(descriptor)
        }
        return current
    }

    /// Opens (and for writing, creates) the download directory once.
    private func rootDescriptor(create: Bool) throws(StorageError) -> Descriptor? {
        if let open = root.withLock({ $0 }) { return open }
        var descriptor = Self.retrying { systemOpen(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        if descriptor < 0 && errno == ENOENT && create {
            try Self.makeDirectories(path)
            descriptor = Self.retrying { systemOpen(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        }
        guard descriptor >= 0 else {
            let number = errno
            if number == ENOENT && !create { return nil }
            throw StorageError.system(number, operation: "open directory", path: path)
        }
        let opened = Descriptor(descriptor)
        return root.withLock { current in
            if let current { return current }  // Another thread was first; ours closes.
            current = opened
            return opened
        }
    }

    /// `mkdir -p` for the download directory itself (which may lie under links the user made).
    private static func makeDirectories(_ path: String) throws(StorageError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw StorageError.system(errno, operation: "mkdir", path: prefix)
            }
            prefix += "/"
        }
    }

    /// The error for a failed open of `name` in `directory`: when the thing there is a symbolic link, a
    /// refusal that says so (`O_NOFOLLOW` reports a link as ELOOP, or as ENOTDIR with `O_DIRECTORY`).
    private func refusal(
        _ number: Int32, at directory: Descriptor, name: String, path: String, operation: String
    ) -> StorageError {
        if number == ELOOP || number == ENOTDIR {
            var info = stat()
            if fstatat(directory.raw, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
                return StorageError(
                    code: .ioError, path: path, errno: ELOOP,
                    message: "\(operation): is a symbolic link; links inside the download directory are never followed")
            }
        }
        return StorageError.system(number, operation: operation, path: path)
    }

    private func requireRegular(_ info: stat, _ relative: TorrentPath) throws(StorageError) {
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return
        case S_IFDIR:
            throw StorageError(code: .isDirectory, path: fullPath(relative), errno: EISDIR, message: "is a directory")
        default:
            throw StorageError(
                code: .notRegularFile, path: fullPath(relative),
                message: "is not a regular file (a FIFO, socket or device); refusing to use it")
        }
    }

    private func missing(_ relative: TorrentPath) -> StorageError {
        StorageError(
            code: .fileNotFound, path: fullPath(relative), errno: ENOENT,
            message: "file or directory removed while the torrent was using it")
    }

    /// The full path of the first `count` components of `relative` (where a walk stopped).
    private func partialPath(_ relative: TorrentPath, _ count: Int) -> String {
        let prefix = relative.components.prefix(max(1, count)).joined(separator: "/")
        return path.hasSuffix("/") ? path + prefix : path + "/" + prefix
    }

    /// Retries a system call interrupted by a signal.
    static func retrying(_ call: () -> Int32) -> Int32 {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }
}

/// A file descriptor, closed when the last reference goes: a descriptor handed to a reader stays open
/// while it reads, even if the cache that lent it has dropped it meanwhile.
final class Descriptor: Sendable {
    let raw: Int32

    init(_ raw: Int32) {
        self.raw = raw
    }

    deinit {
        close(raw)
    }
}

/// `open(2)`, which `DownloadDirectory.open` hides inside the class.
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 {
    open(path, flags)
}
