import Foundation

/// Fails (throws) unless `downloaded` holds exactly the files of `source`, byte for byte.
///
/// `source` and `downloaded` are both files (a single-file torrent) or both directories (the
/// torrent's top folder in the seed's data directory and in the leecher's download directory).
/// Every regular file below `source` must be below `downloaded` at the same relative path with the
/// same bytes, and `downloaded` may hold no other file (no `.part`, `.aria2` or `.!qB` leftovers).
/// Directories themselves are not compared: a torrent does not carry empty folders.
///
/// - Parameter allowMissingEmptyFiles: Transmission 3.00 never creates the empty files of a torrent
///   (`RealClientKind.createsEmptyFiles`); with this set, a missing empty file is not a difference.
func assertSameFiles(source: URL, downloaded: URL, allowMissingEmptyFiles: Bool = false) throws {
    let fileManager = FileManager.default
    var sourceIsDirectory: ObjCBool = false
    guard fileManager.fileExists(atPath: source.path, isDirectory: &sourceIsDirectory) else {
        throw RealClientError("assertSameFiles: the source \(source.path) does not exist")
    }
    var downloadedIsDirectory: ObjCBool = false
    guard fileManager.fileExists(atPath: downloaded.path, isDirectory: &downloadedIsDirectory) else {
        throw RealClientError("nothing was downloaded: \(downloaded.path) does not exist")
    }
    guard sourceIsDirectory.boolValue == downloadedIsDirectory.boolValue else {
        throw RealClientError(
            "\(downloaded.path) is a \(downloadedIsDirectory.boolValue ? "directory" : "file"), "
                + "\(source.path) is not")
    }
    if !sourceIsDirectory.boolValue {
        if let difference = try FileDifference.compare(source, downloaded) {
            throw RealClientError("\(downloaded.path) differs from \(source.path): \(difference)")
        }
        return
    }

    let sourceFiles = try FileDifference.regularFiles(below: source)
    let downloadedFiles = try FileDifference.regularFiles(below: downloaded)
    var problems: [String] = []
    for (path, size) in sourceFiles.sorted(by: { $0.key < $1.key }) {
        guard downloadedFiles[path] != nil else {
            if !(allowMissingEmptyFiles && size == 0) { problems.append("missing: \(path) (\(size) B)") }
            continue
        }
        if let difference = try FileDifference.compare(
            source.appendingPathComponent(path), downloaded.appendingPathComponent(path))
        {
            problems.append("\(path): \(difference)")
        }
    }
    for path in downloadedFiles.keys.sorted() where sourceFiles[path] == nil {
        problems.append("unexpected file: \(path) (\(downloadedFiles[path] ?? 0) B)")
    }
    if !problems.isEmpty {
        let shown = problems.prefix(20).joined(separator: "\n  ")
        throw RealClientError(
            "\(downloaded.path) differs from \(source.path) (\(problems.count) differences):\n  \(shown)"
                + (problems.count > 20 ? "\n  ..." : ""))
    }
}

enum FileDifference {
    /// Relative paths (with `/`) and sizes of the regular files below `root`; symbolic links are
    /// reported as files of size -1 so that they always differ.
    static func regularFiles(below root: URL) throws -> [String: Int64] {
        let fileManager = FileManager.default
        guard let enumerator = fileManager.enumerator(atPath: root.path) else {
            throw RealClientError("cannot list \(root.path)")
        }
        var files: [String: Int64] = [:]
        while let relative = enumerator.nextObject() as? String {
            let attributes = try fileManager.attributesOfItem(atPath: root.appendingPathComponent(relative).path)
            let type = attributes[.type] as? FileAttributeType
            if type == .typeRegular {
                files[relative] = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            } else if type == .typeSymbolicLink {
                files[relative] = -1
            }
        }
        return files
    }

    /// nil when the two files hold the same bytes, else what differs (the size, or the first offset).
    static func compare(_ expected: URL, _ actual: URL) throws -> String? {
        let expectedHandle = try FileHandle(forReadingFrom: expected)
        defer { try? expectedHandle.close() }
        let actualHandle = try FileHandle(forReadingFrom: actual)
        defer { try? actualHandle.close() }
        let expectedSize = try expectedHandle.seekToEnd()
        let actualSize = try actualHandle.seekToEnd()
        if expectedSize != actualSize { return "\(actualSize) bytes, expected \(expectedSize)" }
        try expectedHandle.seek(toOffset: 0)
        try actualHandle.seek(toOffset: 0)
        var offset: UInt64 = 0
        let chunk = 1 << 20
        while offset < expectedSize {
            let left = try expectedHandle.read(upToCount: chunk) ?? Data()
            let right = try actualHandle.read(upToCount: chunk) ?? Data()
            if left != right {
                let index = zip(left, right).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(left.count, right.count)
                return "first difference at byte \(offset + UInt64(index)) of \(expectedSize)"
            }
            if left.isEmpty { break }
            offset += UInt64(left.count)
        }
        return nil
    }
}
