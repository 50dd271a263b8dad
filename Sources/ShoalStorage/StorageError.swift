#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one error type of ShoalStorage: what went wrong (`code`), with which file (`path`), the system's
/// error number when there is one, and a sentence for people.
public struct StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Hashable {
        /// The file does not exist (ENOENT, or ENOTDIR on the way to it).
        case fileNotFound
        /// The file may not be opened or read (EACCES, EPERM).
        case permissionDenied
        /// The file holds fewer bytes than expected: it is shorter than its listed length, or it shrank
        /// while being read.
        case fileTooShort
        /// The path names a directory where a file was expected.
        case isDirectory
        /// Something that is neither a file nor a directory (a FIFO, socket or device) is where a file goes.
        case notRegularFile
        /// Any other failure of a system call; `errno` and `message` tell which.
        case ioError
        /// A caller's argument is out of range (a piece length below 1, a negative file length).
        case invalidArgument
    }

    public var code: Code
    /// The file concerned, if any.
    public var path: String?
    /// The system's error number (`errno`), if a system call failed.
    public var errno: Int32?
    /// What happened, for people (for system errors, `strerror` of `errno`).
    public var message: String

    public init(code: Code, path: String? = nil, errno: Int32? = nil, message: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.message = message
    }

    /// The error for a failed system call `operation` on `path` with error number `number`.
    public static func system(_ number: Int32, operation: String, path: String?) -> StorageError {
        let code: Code =
            switch number {
            case ENOENT, ENOTDIR: .fileNotFound
            case EACCES, EPERM: .permissionDenied
            case EISDIR: .isDirectory
            default: .ioError
            }
        let text = strerror(number).map { String(cString: $0) } ?? "error \(number)"
        return StorageError(code: code, path: path, errno: number, message: "\(operation): \(text)")
    }

    public var description: String {
        if let path { "\(path): \(message)" } else { message }
    }
}
