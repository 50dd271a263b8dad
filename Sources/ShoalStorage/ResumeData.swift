import ShoalBencode
import ShoalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a torrent had verified when it last saved, and what its files looked like then, so that a restart
/// can trust that data without reading it again.
///
/// Saving: ``PieceStorage/sync()`` first (so that nothing claimed here can be lost in a crash), then
/// ``capture(infoHash:verified:layout:directory:)`` and ``save(to:)``. Starting:
/// ``load(from:infoHash:layout:)`` (any error: recheck everything) and
/// ``validate(against:directory:)``, which trusts a verified piece only if every file it touches still has
/// the size and modification time recorded here.
///
/// The encoding is a bencoded dictionary (canonical, keys sorted):
///
///     version    1
///     info-hash  the 20-byte v1 or 32-byte v2 info-hash of the torrent
///     pieces     the number of pieces
///     verified   the verified pieces, as a BEP 3 bitfield
///     files      one dictionary per file of the layout, in order: {size, mtime, mtime-ns} as seen when
///                saved, or an empty dictionary for a file that did not exist (and for padding files)
///
/// Reading is strict about all of these (a typed ``ResumeDataError`` for anything wrong) and ignores keys
/// it does not know, so that a later version can add some without breaking older readers.
public struct ResumeData: Hashable, Sendable {
    /// The version written, and the only one read.
    public static let version: Int64 = 1
    /// The largest resume file read (a torrent of a million pieces and 100 000 files needs a few MiB).
    public static let maxEncodedBytes = 64 << 20

    /// The torrent this is for.
    public var infoHash: InfoHash
    /// The pieces whose hash was checked.
    public var verified: Bitfield
    /// For each file of the layout, its size and modification time when saved; nil for a file that did not
    /// exist (and for padding files, which are never on disk).
    public var files: [FileStamp?]

    public init(infoHash: InfoHash, verified: Bitfield, files: [FileStamp?]) {
        self.infoHash = infoHash
        self.verified = verified
        self.files = files
    }

    /// Resume data for `verified` pieces, with the files under `directory` as they are now.
    public static func capture(
        infoHash: InfoHash, verified: Bitfield, layout: FileLayout, directory: String
    ) -> ResumeData {
        ResumeData(infoHash: infoHash, verified: verified, files: FileStamp.current(layout: layout, directory: directory))
    }

    // MARK: Trusting what was saved

    /// What can be trusted of saved resume data.
    public struct Validation: Hashable, Sendable {
        /// Pieces verified when saved whose files are all unchanged: have them without reading.
        public var trusted: Bitfield
        /// Pieces that touch a file changed since the save (size or modification time differ, or it is gone,
        /// or it appeared): their data must be rechecked. Pieces in neither set were not verified when saved
        /// and their files are unchanged, so they are still missing; an engine that wants to be thorough can
        /// recheck every piece that is not trusted.
        public var needsRecheck: Bitfield
        /// The files found changed, in order.
        public var changedFiles: [Int]
    }

    /// Which pieces can be trusted now: a piece is trusted only if it is marked verified and every file it
    /// touches (padding and zero-length files touch none) has the recorded size and modification time. A
    /// file that cannot be examined counts as changed.
    ///
    /// Resume data for another layout (piece or file count differ) trusts nothing and asks for a recheck of
    /// everything; ``load(from:infoHash:layout:)`` refuses such data in the first place.
    public func validate(against layout: FileLayout, directory: String) -> Validation {
        guard verified.count == layout.pieceCount, files.count == layout.files.count else {
            return Validation(
                trusted: Bitfield(count: layout.pieceCount), needsRecheck: Bitfield(count: layout.pieceCount, allSet: true),
                changedFiles: Array(layout.files.indices))
        }
        let current = FileStamp.current(layout: layout, directory: directory)
        var trusted = verified
        var needsRecheck = Bitfield(count: layout.pieceCount)
        var changedFiles: [Int] = []
        for (index, file) in layout.files.enumerated() where file.length > 0 && !file.isPadding {
            if files[index] == current[index] { continue }  // Unchanged (or still missing).
            changedFiles.append(index)
            for piece in layout.pieces(coveringFile: index) {
                trusted.clear(piece)
                needsRecheck.set(piece)
            }
        }
        // A verified piece over a file that was missing when saved contradicts itself: do not trust it.
        for piece in trusted.setIndices {
            let touchesMissing = layout.fileIndices(inPiece: piece).contains { index in
                let file = layout.files[index]
                return file.length > 0 && !file.isPadding && files[index] == nil
            }
            if touchesMissing {
                trusted.clear(piece)
                needsRecheck.set(piece)
            }
        }
        return Validation(trusted: trusted, needsRecheck: needsRecheck, changedFiles: changedFiles)
    }

    // MARK: Encoding

    /// The canonical bencoding.
    public var encoded: [UInt8] {
        let stamps: [BencodeValue] = files.map { stamp in
            guard let stamp else { return .dictionary([:] as [String: BencodeValue]) }
            return [
                "size": .integer(stamp.size),
                "mtime": .integer(stamp.modifiedSeconds),
                "mtime-ns": .integer(Int64(stamp.modifiedNanoseconds)),
            ]
        }
        let value: BencodeValue = [
            "version": .integer(Self.version),
            "info-hash": .string(infoHash.bytes),
            "pieces": .integer(Int64(verified.count)),
            "verified": .string(verified.bytes),
            "files": .list(stamps),
        ]
        return value.encoded
    }

    /// Reads resume data and checks that it belongs to the torrent with `infoHash` and `layout`.
    public init(decoding bytes: [UInt8], infoHash: InfoHash, layout: FileLayout) throws(ResumeDataError) {
        let root: BencodeNode
        do {
            root = try BencodeDocument(decoding: bytes).root
        } catch {
            throw ResumeDataError(.malformed, "not bencode: \(error)")
        }
        guard root.kind == .dictionary else { throw ResumeDataError(.malformed, "not a dictionary") }

        let version = try Self.integer(root, "version")
        guard version == Self.version else { throw ResumeDataError(.unsupportedVersion(version), "version \(version)") }

        guard let hash = root["info-hash"]?.bytes else { throw ResumeDataError(.malformed, "info-hash missing") }
        guard hash.elementsEqual(infoHash.bytes) else {
            throw ResumeDataError(.wrongInfoHash, "for torrent \(Hex.encode(Array(hash))), not \(infoHash.hex)")
        }

        let pieceCount = try Self.integer(root, "pieces")
        guard pieceCount == layout.pieceCount else {
            throw ResumeDataError(.wrongPieceCount, "\(pieceCount) pieces; the torrent has \(layout.pieceCount)")
        }
        guard let bits = root["verified"]?.bytes, let verified = Bitfield(count: layout.pieceCount, bytes: bits) else {
            throw ResumeDataError(.malformed, "verified is missing, of the wrong length, or has spare bits set")
        }

        guard let entries = root["files"]?.list else { throw ResumeDataError(.malformed, "files missing") }
        guard entries.count == layout.files.count else {
            throw ResumeDataError(.wrongFileCount, "\(entries.count) files; the torrent has \(layout.files.count)")
        }
        var files: [FileStamp?] = []
        files.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            guard entry.kind == .dictionary else { throw ResumeDataError(.malformed, "file \(index) is not a dictionary") }
            if entry.count == 0 {
                files.append(nil)
                continue
            }
            let size = try Self.integer(entry, "size", file: index)
            let seconds = try Self.integer(entry, "mtime", file: index)
            let nanoseconds = try Self.integer(entry, "mtime-ns", file: index)
            guard size >= 0, (0..<1_000_000_000).contains(nanoseconds) else {
                throw ResumeDataError(.malformed, "file \(index): size or mtime-ns out of range")
            }
            files.append(FileStamp(size: size, modifiedSeconds: seconds, modifiedNanoseconds: Int32(nanoseconds)))
        }
        self.init(infoHash: infoHash, verified: verified, files: files)
    }

    /// Writes the encoding to `path` atomically: a temporary file, flushed, renamed over the old one. A
    /// crash leaves the old resume data or the new, never a mix.
    public func save(to path: String) throws(StorageError) {
        try WholeFile.writeAtomically(encoded, to: path, replace: true)
    }

    /// Reads resume data saved at `path` for the torrent with `infoHash` and `layout`. Any error (no file,
    /// another torrent's, another version, damaged) means: recheck.
    public static func load(from path: String, infoHash: InfoHash, layout: FileLayout) throws(ResumeDataError) -> ResumeData {
        let bytes: [UInt8]
        do {
            bytes = try WholeFile.read(path, limit: maxEncodedBytes)
        } catch {
            throw ResumeDataError(.unreadable(error), error.description)
        }
        return try ResumeData(decoding: bytes, infoHash: infoHash, layout: layout)
    }

    private static func integer(_ dictionary: BencodeNode, _ key: String, file: Int? = nil) throws(ResumeDataError) -> Int64 {
        guard let value = dictionary[key]?.integer else {
            let place = file.map { "file \($0): " } ?? ""
            throw ResumeDataError(.malformed, "\(place)\(key) missing or not an integer")
        }
        return value
    }
}

/// A file's size and modification time, as `stat` tells them: what shows whether anyone wrote the file.
public struct FileStamp: Hashable, Sendable {
    public var size: Int64
    /// Seconds since 1970.
    public var modifiedSeconds: Int64
    /// Nanoseconds within the second (0 on file systems that keep only seconds).
    public var modifiedNanoseconds: Int32

    public init(size: Int64, modifiedSeconds: Int64, modifiedNanoseconds: Int32) {
        self.size = size
        self.modifiedSeconds = modifiedSeconds
        self.modifiedNanoseconds = modifiedNanoseconds
    }

    init(_ info: stat) {
        size = Int64(info.st_size)
        #if canImport(Darwin)
        modifiedSeconds = Int64(info.st_mtimespec.tv_sec)
        modifiedNanoseconds = Int32(info.st_mtimespec.tv_nsec)
        #else
        modifiedSeconds = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int32(info.st_mtim.tv_nsec)
        #endif
    }

    /// The stamps of the layout's files under `directory` now: nil for padding, for a file that is missing,
    /// that is not a regular file (a symbolic link is not followed), or that cannot be examined.
    static func current(layout: FileLayout, directory: String) -> [FileStamp?] {
        let root = DownloadDirectory(path: directory)
        return layout.files.map { file in
            guard !file.isPadding, let info = try? root.status(file.path), (info.st_mode & S_IFMT) == S_IFREG else {
                return nil
            }
            return FileStamp(info)
        }
    }
}

/// Why saved resume data was not used. In every case the caller rechecks the torrent's data.
public struct ResumeDataError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The file could not be read (most often: there is none yet).
        case unreadable(StorageError)
        /// Not the expected bencoded dictionary, or a field is missing, mistyped or out of range.
        case malformed
        /// Written by another version of the format.
        case unsupportedVersion(Int64)
        /// Saved for another torrent.
        case wrongInfoHash
        /// Saved for a torrent with another number of pieces.
        case wrongPieceCount
        /// Saved for a torrent with another number of files.
        case wrongFileCount
    }

    public var code: Code
    /// What was wrong, for people.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "resume data: \(message)" }
}
