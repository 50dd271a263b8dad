import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One content file, opened read-only by one worker of the piece hasher, read in large sequential chunks
/// either from a memory mapping or with `pread`. Not shared between threads.
final class ContentFile {
    let path: String
    private let descriptor: FileDescriptor
    /// False once mapping this file has failed (a pipe, a device, a file system without mmap): from then
    /// on it is read with `pread`.
    private var canMap: Bool

    /// The size of one memory mapping: large enough that mapping costs little per byte, small enough to
    /// keep the address space and the page tables modest.
    static let mapWindow: Int64 = 64 << 20
    private static let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))

    init(path: String) throws(StorageError) {
        do {
            descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch let error as Errno {
            throw StorageError.system(error.rawValue, operation: "open", path: path)
        } catch {
            throw StorageError(code: .ioError, path: path, message: "open: \(error)")
        }
        self.path = path
        self.canMap = true
        #if os(Linux)
        // Reads go forward: let the kernel read ahead aggressively (matters when not in the page cache).
        _ = posix_fadvise(descriptor.rawValue, 0, 0, POSIX_FADV_SEQUENTIAL)
        #endif
    }

    deinit {
        try? descriptor.close()
    }

    /// The size the file has now, or nil if it is not a regular file (its size means nothing then).
    private func currentSize() throws(StorageError) -> Int64? {
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else {
            throw StorageError.system(errno, operation: "fstat", path: path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    private func tooShort(endingAt size: Int64, expected end: Int64) -> StorageError {
        StorageError(
            code: .fileTooShort, path: path,
            message: "file ends at byte \(size), expected at least \(end) bytes (did it change while hashing?)")
    }

    /// Hands the bytes of `range` to `body`, in order, in one or more chunks.
    ///
    /// With `map`, a regular file is mapped in windows of up to `mapWindow` bytes (pages populated up front)
    /// and `body` sees the mapping itself; if mapping fails, or without `map`, the bytes are read with
    /// `pread` into `buffer` and `body` sees `buffer`.
    func read(
        _ range: Range<Int64>, map: Bool, buffer: UnsafeMutableRawBufferPointer,
        _ body: (UnsafeRawBufferPointer) -> Void
    ) throws(StorageError) {
        var offset = range.lowerBound
        if map && canMap {
            offset = try readMapped(range, body)
        }
        while offset < range.upperBound {
            let wanted = Int(min(Int64(buffer.count), range.upperBound - offset))
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted])
            let count: Int
            do {
                count = try descriptor.read(fromAbsoluteOffset: offset, into: target)
            } catch let error as Errno {
                throw StorageError.system(error.rawValue, operation: "read at byte \(offset)", path: path)
            } catch {
                throw StorageError(code: .ioError, path: path, message: "read at byte \(offset): \(error)")
            }
            guard count > 0 else {
                throw tooShort(endingAt: offset, expected: range.upperBound)
            }
            body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            offset += Int64(count)
        }
    }

    /// Maps and hands over as much of `range` as mapping allows; returns where it stopped (the end of
    /// `range`, or the first byte it could not map).
    private func readMapped(_ range: Range<Int64>, _ body: (UnsafeRawBufferPointer) -> Void) throws(StorageError) -> Int64 {
        guard let size = try currentSize() else {
            canMap = false
            return range.lowerBound
        }
        guard size >= range.upperBound else {
            throw tooShort(endingAt: size, expected: range.upperBound)
        }
        var offset = range.lowerBound
        while offset < range.upperBound {
            let end = min(range.upperBound, offset + Self.mapWindow)
            #if os(Linux)
            let mode = getenv("SHOAL_MAP_MODE").map { String(cString: $0) } ?? "populate"
            let flags = (mode.hasSuffix("pop") && !mode.hasPrefix("alignedhuge")) || mode == "populate" ? MAP_PRIVATE | MAP_POPULATE : MAP_PRIVATE
            #else
            let flags = MAP_PRIVATE
            #endif
            let align: Int64 = mode.hasPrefix("aligned") ? 2 << 20 : Self.pageSize
            let start = offset & ~(align - 1)
            let length = Int(end - start)
            var fixed: UnsafeMutableRawPointer? = nil
            if align > Self.pageSize {
                guard let reserve = mmap(nil, length + Int(align), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
                    reserve != UnsafeMutableRawPointer(bitPattern: -1) else { canMap = false; return offset }
                let raw = UInt(bitPattern: reserve)
                let aligned = (raw + UInt(align) - 1) & ~(UInt(align) - 1)
                if aligned > raw { munmap(reserve, Int(aligned - raw)) }
                let tail = raw + UInt(length) + UInt(align) - (aligned + UInt(length))
                if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + UInt(length)), Int(tail)) }
                fixed = UnsafeMutableRawPointer(bitPattern: aligned)
            }
            guard let base = mmap(fixed, length, PROT_READ, flags | (fixed == nil ? 0 : MAP_FIXED), descriptor.rawValue, off_t(start)),
                base != UnsafeMutableRawPointer(bitPattern: -1)
            else {
                canMap = false
                return offset
            }
            defer { munmap(base, length) }
            if mode == "seq" { madvise(base, length, MADV_SEQUENTIAL) }
            if mode == "willneed" { madvise(base, length, MADV_SEQUENTIAL); madvise(base, length, MADV_WILLNEED) }
            if mode == "popread" { madvise(base, length, 22) }
            if mode.hasPrefix("alignedhuge") { madvise(base, length, MADV_HUGEPAGE) }
            if mode == "alignedhugepopread" { madvise(base, length, 22) }
            // A mapped page past the end of the file raises SIGBUS when touched. Check again, now that the
            // window is mapped: the file may have been truncated since it was measured.
            if let now = try currentSize(), now < end {
                throw tooShort(endingAt: now, expected: end)
            }
            body(UnsafeRawBufferPointer(start: base + Int(offset - start), count: Int(end - offset)))
            offset = end
        }
        return offset
    }
}
