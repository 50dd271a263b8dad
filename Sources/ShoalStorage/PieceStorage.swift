import Crypto
import ShoalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One torrent's files on disk, addressed by piece: blocks written as they arrive, read back to serve peers,
/// and pieces hashed once complete.
///
/// Synchronous and blocking (the runtime calls it from its disk threads). Calls on disjoint ranges may run at
/// once on any threads; calls on overlapping ranges must be ordered by the caller.
///
/// **Paths.** File `i` is at the download directory joined with `layout.files[i].path` (already sanitised
/// by ``TorrentPath``). Files are reached with `openat` from the directory's descriptor, each component with
/// `O_NOFOLLOW`: a symbolic link inside the download directory, at a file's place or a directory's, is
/// refused with a ``StorageError/Condition/pathConflict`` error and never written through (see
/// `DownloadDirectory`). Something other than a regular file at a file's place is refused too.
///
/// **Files.** Directories are created as needed; a file is created, empty and sparse, by the first write
/// into it (never preallocated, never filled with zeros), and is opened lazily. A write never goes past a
/// file's length, and nothing is ever truncated: a file that is longer on disk keeps its extra bytes.
/// Padding files (BEP 47) and the gaps of v2 torrents are never written and read as zeros. Zero-length
/// files hold no piece; ``createEmptyFiles(where:)`` makes them. Files marked as symbolic links (BEP 47 `l`)
/// are not made.
///
/// **Skipped files.** The storage does not know priorities: it writes what it is given. The engine only
/// writes pieces it wants, so a skipped file is created only when a piece it shares with a wanted file is
/// written, and then holds (sparsely) just those boundary bytes, where they are needed to hash the piece
/// and to serve it. (libtorrent keeps such bytes in a separate part file so that a skipped file never
/// appears; that is not done here.)
///
/// **Descriptors.** At most ``maxOpenFiles`` files are kept open (least recently used closed first). A
/// descriptor being read or written by another thread when it is evicted closes when that call ends, so at
/// moments the count can exceed the limit by the number of calls in flight. The download directory's own
/// descriptor is kept besides, and an open walks the file's directories with short-lived ones. A file first
/// opened for reading is reopened for writing when written.
///
/// **A file removed under the storage.** A file that has been seen (opened or created) is never created
/// again: if it has gone when it is next opened, reads and writes throw ``StorageError/Condition/missing``
/// instead of quietly reading zeros or starting a new empty file. A file never seen reads as zeros (not
/// downloaded yet). While a descriptor is still open, writes go to the removed file, unseen; resume-data
/// validation at the next start catches that.
///
/// **Durability.** Writes go to the page cache; ``sync()`` flushes every file written since the last sync
/// (and the directories holding them). Call it before saving resume data, so that resume data never claims
/// pieces that a crash could lose.
public final class PieceStorage: Sendable {
    /// The torrent's piece space and files.
    public let layout: FileLayout
    /// The download directory.
    public var directory: String { root.path }
    /// The most files kept open at once.
    public let maxOpenFiles: Int

    /// The default bound on open files, per torrent.
    public static let defaultMaxOpenFiles = 64
    /// The most bytes read at once when hashing a piece: pieces up to this size are read in one `pread` per
    /// file span; larger ones (up to 1 GiB is allowed) in chunks, to bound memory.
    static let hashChunkBytes = 4 << 20

    private let root: DownloadDirectory
    private let state: Mutex<State>

    private struct State {
        /// The open files, by file index.
        var open: [Int: Entry] = [:]
        /// Ticks of the least-recently-used clock.
        var clock: UInt64 = 0
        /// Files known to exist (opened or created by this storage): never created again.
        var seen: Set<Int> = []
        /// Files opened for writing since the last sync.
        var dirty: Set<Int> = []
    }

    private struct Entry {
        var descriptor: Descriptor
        var writable: Bool
        var lastUse: UInt64
    }

    /// A storage for the files of `layout` under `directory`, which is created on the first write if
    /// missing. Nothing is opened until needed.
    public init(layout: FileLayout, directory: String, maxOpenFiles: Int = PieceStorage.defaultMaxOpenFiles) {
        self.layout = layout
        self.maxOpenFiles = max(1, maxOpenFiles)
        self.root = DownloadDirectory(path: directory)
        self.state = Mutex(State())
    }

    /// The full path of file `index`.
    public func path(ofFile index: Int) -> String {
        root.fullPath(layout.files[index].path)
    }

    /// The number of files open now.
    public var openFileCount: Int {
        state.withLock { $0.open.count }
    }

    // MARK: Writing and reading

    /// Writes `bytes` at `offset` in piece `piece`, straight from the caller's memory (`pwrite`, no copy).
    /// Bytes that fall on padding are not written. Throws ``StorageError/Condition/invalidArgument`` for a
    /// range outside the piece; disk errors as described on the type.
    public func write(piece: Int, offset: Int, bytes: UnsafeRawBufferPointer) throws(StorageError) {
        try checkRange(piece: piece, offset: offset, length: bytes.count)
        guard !bytes.isEmpty else { return }
        let start = layout.range(ofPiece: piece).lowerBound + Int64(offset)
        try layout.forEachSpan(in: start..<(start + Int64(bytes.count))) { (span) throws(StorageError) in
            guard let index = span.fileIndex, !span.isPadding else { return }
            let descriptor = try open(index, writing: true)!
            var done = 0
            while done < span.length {
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[(span.offsetInRange + done)..<(span.offsetInRange + span.length)])
                let position = span.offsetInFile + Int64(done)
                let count = pwrite(descriptor.raw, chunk.baseAddress, chunk.count, off_t(position))
                if count < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.system(errno, operation: "write at byte \(position)", path: path(ofFile: index))
                }
                guard count > 0 else {
                    throw StorageError(
                        code: .ioError, path: path(ofFile: index), errno: EIO,
                        message: "write at byte \(position): nothing written")
                }
                done += count
            }
        }
    }

    /// Reads `length` bytes at `offset` in piece `piece` into the start of `buffer` (`pread`). Padding, files
    /// not created yet and parts of files not written yet read as zeros.
    public func read(
        piece: Int, offset: Int, length: Int, into buffer: UnsafeMutableRawBufferPointer
    ) throws(StorageError) {
        try checkRange(piece: piece, offset: offset, length: length)
        guard buffer.count >= length else {
            throw StorageError(
                code: .invalidArgument, message: "buffer of \(buffer.count) bytes for a read of \(length)")
        }
        guard length > 0 else { return }
        let start = layout.range(ofPiece: piece).lowerBound + Int64(offset)
        try read(start..<(start + Int64(length)), into: buffer)
    }

    /// The SHA-1 of piece `index` as it is on disk (BEP 3 `pieces`), padding counted as zeros. The piece is
    /// read with `pread` in one go (in chunks of 4 MiB for larger pieces) and hashed.
    public func hashPiece(_ index: Int) throws(StorageError) -> Digest20 {
        guard index >= 0, index < layout.pieceCount else {
            throw StorageError(code: .invalidArgument, message: "piece \(index) of \(layout.pieceCount)")
        }
        var hasher = Insecure.SHA1()
        try hashRest(ofPiece: index, from: 0, into: &hasher)
        return Digest20(bytes: Array(hasher.finalize()))!
    }

    /// Feeds `hasher` with piece `index` as it is on disk from byte `offset` to its end, padding counted as
    /// zeros (read in chunks of at most 4 MiB): what ``hashPiece(_:)`` does from offset 0, and what finishes a
    /// piece whose first bytes were hashed as they were written.
    func hashRest(ofPiece index: Int, from offset: Int, into hasher: inout Insecure.SHA1) throws(StorageError) {
        guard index >= 0, index < layout.pieceCount else {
            throw StorageError(code: .invalidArgument, message: "piece \(index) of \(layout.pieceCount)")
        }
        let range = layout.range(ofPiece: index)
        guard offset >= 0, offset <= range.count else {
            throw StorageError(code: .invalidArgument, message: "offset \(offset) in piece \(index) of \(range.count) bytes")
        }
        var position = range.lowerBound + Int64(offset)
        guard position < range.upperBound else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Int(min(range.upperBound - position, Int64(Self.hashChunkBytes))), alignment: 16)
        defer { buffer.deallocate() }
        while position < range.upperBound {
            let count = Int(min(Int64(buffer.count), range.upperBound - position))
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[..<count])
            try read(position..<(position + Int64(count)), into: chunk)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(chunk))
            position += Int64(count)
        }
    }

    /// Creates the zero-length files of the torrent for which `wanted` is true (they hold no piece, so no
    /// write creates them): call it when the torrent starts downloading. Padding and symlink entries are
    /// left out.
    public func createEmptyFiles(where wanted: (Int) -> Bool = { _ in true }) throws(StorageError) {
        for (index, file) in layout.files.enumerated()
        where file.length == 0 && !file.isPadding && !file.attributes.contains(.symlink) && wanted(index) {
            _ = try open(index, writing: true)
        }
    }

    // MARK: Durability and descriptors

    /// Flushes to disk every file opened for writing since the last sync, and the directories that hold
    /// them (`fsync`), so that what was written survives a crash. Call before saving resume data.
    public func sync() throws(StorageError) {
        let dirty = state.withLock { state in
            let dirty = state.dirty
            state.dirty = []
            return dirty
        }
        // One file of each directory, to find the directory by.
        var directories: [ArraySlice<String>: TorrentPath] = [:]
        do throws(StorageError) {
            for index in dirty.sorted() {
                guard let descriptor = try open(index, writing: false) else { continue }
                guard fsync(descriptor.raw) == 0 else {
                    throw StorageError.system(errno, operation: "fsync", path: path(ofFile: index))
                }
                if Self.isDeleted(descriptor) { throw deleted(index) }
                let path = layout.files[index].path
                directories[path.components.dropLast(), default: path] = path
            }
            for path in directories.values {
                if let parent = try root.parent(of: path, create: false) {
                    _ = fsync(parent.raw)  // Best effort: some file systems refuse fsync on directories.
                }
            }
        } catch {
            // Whatever was not synced stays dirty for the next attempt.
            state.withLock { $0.dirty.formUnion(dirty) }
            throw error
        }
    }

    /// Fails when a file open for this torrent was deleted (its last link removed) while in use: what is
    /// written to it lands in an orphaned inode and is lost when it closes. Cheap (one `fstat` per open
    /// file): a runtime calls it every few seconds; `sync()` checks the same.
    public func checkNotRemoved() throws(StorageError) {
        let open = state.withLock { state in state.open.map { ($0.key, $0.value.descriptor) } }
        for (index, descriptor) in open.sorted(by: { $0.0 < $1.0 }) where Self.isDeleted(descriptor) {
            throw deleted(index)
        }
    }

    /// Closes every open file (when the torrent stops, or to give descriptors back). Files are reopened
    /// when next used.
    public func closeAll() {
        let closing = state.withLock { state in
            let open = state.open
            state.open = [:]
            return open
        }
        _ = closing  // The descriptors close here, outside the lock, unless a call in flight still uses one.
    }

    // MARK: Internals

    /// Whether the open file has no name left (its last link was removed).
    private static func isDeleted(_ descriptor: Descriptor) -> Bool {
        var info = stat()
        return fstat(descriptor.raw, &info) == 0 && info.st_nlink == 0
    }

    private func deleted(_ index: Int) -> StorageError {
        StorageError(
            code: .fileNotFound, path: path(ofFile: index),
            message: "deleted while in use; what was written to it is lost")
    }

    private func checkRange(piece: Int, offset: Int, length: Int) throws(StorageError) {
        guard layout.contains(piece: piece, offset: offset, length: length) || (length == 0 && piece >= 0
            && piece < layout.pieceCount && offset >= 0 && offset <= layout.length(ofPiece: piece))
        else {
            throw StorageError(
                code: .invalidArgument,
                message: "\(length) bytes at \(offset) are not inside piece \(piece) of \(layout.pieceCount)"
                    + " (\(layout.length(ofPiece: piece)) bytes)")
        }
    }

    /// Reads `range` of the piece space into `buffer` (exactly `range.count` bytes).
    private func read(_ range: Range<Int64>, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        try layout.forEachSpan(in: range) { (span) throws(StorageError) in
            let target = UnsafeMutableRawBufferPointer(
                rebasing: buffer[span.offsetInRange..<(span.offsetInRange + span.length)])
            guard let index = span.fileIndex, !span.isPadding, let descriptor = try open(index, writing: false) else {
                target.initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            var done = 0
            while done < target.count {
                let position = span.offsetInFile + Int64(done)
                let count = pread(descriptor.raw, target.baseAddress! + done, target.count - done, off_t(position))
                if count < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.system(errno, operation: "read at byte \(position)", path: path(ofFile: index))
                }
                if count == 0 {
                    // Past the end of the file: not written yet.
                    UnsafeMutableRawBufferPointer(rebasing: target[done...]).initializeMemory(as: UInt8.self, repeating: 0)
                    return
                }
                done += count
            }
        }
    }

    /// The descriptor of file `index`, from the cache or opened now; nil when reading a file never seen that
    /// does not exist.
    private func open(_ index: Int, writing: Bool) throws(StorageError) -> Descriptor? {
        let lookup: Lookup = state.withLock { state in
            state.clock += 1
            if let entry = state.open[index], entry.writable || !writing {
                state.open[index]!.lastUse = state.clock
                return .cached(entry.descriptor)
            }
            return .missing(seen: state.seen.contains(index))
        }
        let seen: Bool
        switch lookup {
        case .cached(let descriptor): return descriptor
        case .missing(let wasSeen): seen = wasSeen
        }

        // Open outside the lock: opening may wait for the disk, and other files' reads and writes go on.
        let file = layout.files[index]
        let access: DownloadDirectory.Access =
            writing
            ? .write(create: !seen, permissions: file.attributes.contains(.executable) ? 0o755 : 0o644)
            : .read
        guard let opened = try root.open(file.path, access) else {
            if seen {
                throw StorageError(
                    code: .fileNotFound, path: path(ofFile: index), errno: ENOENT,
                    message: "open: file removed while the torrent was using it")
            }
            return nil
        }

        var evicted: [Entry] = []
        let descriptor = state.withLock { state in
            state.seen.insert(index)
            if writing { state.dirty.insert(index) }
            state.clock += 1
            if let entry = state.open[index], entry.writable || !writing {
                // Another thread opened it meanwhile; ours closes when dropped.
                state.open[index]!.lastUse = state.clock
                return entry.descriptor
            }
            if let readOnly = state.open.removeValue(forKey: index) { evicted.append(readOnly) }
            state.open[index] = Entry(descriptor: opened, writable: writing, lastUse: state.clock)
            while state.open.count > maxOpenFiles {
                // A linear scan: the cache is small, and this runs only when a file is opened.
                let oldest = state.open.min { $0.value.lastUse < $1.value.lastUse }!.key
                evicted.append(state.open.removeValue(forKey: oldest)!)
            }
            return opened
        }
        evicted.removeAll()  // Evicted descriptors close here, outside the lock.
        return descriptor
    }

    private enum Lookup {
        case cached(Descriptor)
        case missing(seen: Bool)
    }
}
