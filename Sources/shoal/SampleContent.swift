import Glibc
import ShoalCore
import SystemPackage

/// The demo's sample folder: a few files of pseudo-random bytes (from a seed, so every run shares the
/// same torrent), in subfolders and with names that are not plain ASCII.
enum SampleContent {
    static let name = "Shoal Demo"

    /// Relative paths and their share of the total size; a small text file comes on top.
    private static let files: [(path: String, share: Int)] = [
        ("film.mkv", 55),
        ("album/01 Overture.flac", 25),
        ("album/02 Déjà vu.flac", 15),
        ("extras/making of.ogg", 5),
    ]

    /// Writes the sample folder into `directory` (which must exist) and returns its path.
    static func write(into directory: String, totalSize: Int64, seed: UInt64) throws -> String {
        let root = directory + "/" + name
        var random = SplitMix64(seed: seed)
        var remaining = totalSize
        for (index, file) in files.enumerated() {
            let length = index == files.count - 1 ? remaining : totalSize * Int64(file.share) / 100
            remaining -= length
            try writeFile(root + "/" + file.path, length: length, random: &random)
        }
        let readme = Array("A sample made by `shoal demo`: pseudo-random bytes from seed \(seed).\n".utf8)
        try writeFile(root + "/README.txt", bytes: readme)
        return root
    }

    private static func writeFile(_ path: String, length: Int64, random: inout SplitMix64) throws {
        let descriptor = try create(path)
        defer { try? descriptor.close() }
        var words = [UInt64](repeating: 0, count: 1 << 17)  // 1 MiB
        var written: Int64 = 0
        while written < length {
            for index in words.indices { words[index] = random.next() }
            let count = Int(min(Int64(words.count * 8), length - written))
            _ = try words.withUnsafeBytes { bytes in
                try descriptor.writeAll(toAbsoluteOffset: written, UnsafeRawBufferPointer(rebasing: bytes[..<count]))
            }
            written += Int64(count)
        }
    }

    private static func writeFile(_ path: String, bytes: [UInt8]) throws {
        let descriptor = try create(path)
        defer { try? descriptor.close() }
        _ = try descriptor.writeAll(bytes)
    }

    private static func create(_ path: String) throws -> FileDescriptor {
        try makeDirectories(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]))
        return try FileDescriptor.open(
            FilePath(path), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
    }

    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw Errno(rawValue: errno)
            }
        }
    }
}
