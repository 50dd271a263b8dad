#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension StorageError {
    /// What a storage error means for a running torrent, so that the engine can act on it without reading
    /// `errno` values. Derived from ``code`` and ``errno``.
    ///
    /// Whatever the condition, pieces verified before the error stay verified: no error here makes the
    /// storage throw data away, and nothing is truncated. The engine stops (or pauses) the torrent, tells
    /// the user, and keeps its resume data.
    public enum Condition: Sendable, Hashable {
        /// The disk or the user's quota is full (ENOSPC, EDQUOT), or the file is over the file system's
        /// or the process's size limit (EFBIG). Pause; downloading can go on once space is freed.
        case noSpace
        /// The file system is mounted read-only (EROFS).
        case readOnly
        /// The file or a directory on its way may not be created, opened or written (EACCES, EPERM).
        case permissionDenied
        /// A file or directory the torrent uses is gone (ENOENT): removed while the torrent ran, or never
        /// there when the storage was asked for it. The pieces of that file must be rechecked.
        case missing
        /// Something other than what the torrent needs is at a path: a symbolic link (never followed), a
        /// directory or a special file where a file goes, a file where a directory goes (ELOOP, EISDIR,
        /// ENOTDIR).
        case pathConflict
        /// A file is shorter than it should be (while hashing existing content).
        case fileTooShort
        /// The caller asked for something impossible (a range outside a piece): a bug, not a disk problem.
        case invalidArgument
        /// Anything else, EIO first: the disk or the file system failed.
        case ioError
    }

    /// What this error means for a running torrent.
    public var condition: Condition {
        switch code {
        case .invalidArgument: return .invalidArgument
        case .fileTooShort: return .fileTooShort
        case .isDirectory, .notRegularFile: return .pathConflict
        case .fileNotFound, .permissionDenied, .ioError: break
        }
        switch errno {
        case ENOSPC?, EDQUOT?, EFBIG?: return .noSpace
        case EROFS?: return .readOnly
        case EACCES?, EPERM?: return .permissionDenied
        case ENOENT?: return .missing
        case ELOOP?, EISDIR?, ENOTDIR?: return .pathConflict
        default:
            switch code {
            case .fileNotFound: return .missing
            case .permissionDenied: return .permissionDenied
            default: return .ioError
            }
        }
    }
}
