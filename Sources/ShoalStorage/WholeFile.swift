import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small whole files: a .torrent to read, a .torrent or resume file to write so that a crash leaves
/// either the old file or the new one, never half of one.
public enum WholeFile {
    /// The bytes of the file at `path`; refuses a file larger than `limit` bytes without reading it all.
    public static func read(_ path: String, limit: Int) throws(StorageError) -> [UInt8] {
        let descriptor = try open(path, .readOnly, options: [.closeOnExec])
        defer { try? descriptor.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            } catch {
                throw failure(error, "read", path)
            }
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else {
                throw StorageError(code: .invalidArgument, path: path, message: "larger than \(limit) bytes")
            }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes `bytes` to `path` through a temporary file in the same directory, flushed and renamed
    /// over the destination. Unless `replace` is true, an existing destination is an error.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, replace: Bool = true) throws(StorageError) {
        let temporary = path + ".part-\(getpid())"
        let descriptor = try open(temporary, .writeOnly, options: [.create, .truncate, .closeOnExec])
        do throws(StorageError) {
            do {
                _ = try bytes.withUnsafeBytes { try descriptor.writeAll($0) }
                guard fsync(descriptor.rawValue) == 0 else { throw Errno(rawValue: errno) }
                try descriptor.close()
            } catch {
                try? descriptor.close()
                throw failure(error, "write", temporary)
            }
            // link() refuses an existing destination atomically; rename() replaces it atomically.
            let result = replace ? rename(temporary, path) : link(temporary, path)
            guard result == 0 else { throw StorageError.system(errno, operation: replace ? "rename" : "link", path: path) }
            if !replace { unlink(temporary) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    private static func failure(_ error: any Error, _ operation: String, _ path: String) -> StorageError {
        if let errno = error as? Errno { return StorageError.system(errno.rawValue, operation: operation, path: path) }
        return StorageError(code: .ioError, path: path, message: "\(operation): \(error)")
    }

    private static func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions
    ) throws(StorageError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), mode, options: options, permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw failure(error, "open", path)
        }
    }
}
