import Foundation

/// The files of a real run: the random source file, and the check that a download equals it.
enum LabFiles {
    /// Bytes read or written at a time.
    static let chunkSize = 1 << 20

    /// Writes `size` random bytes (from `random`) to a new file at `path`.
    static func writeRandom<Random: RandomNumberGenerator>(
        size: Int, to path: String, using random: inout Random
    ) throws(RealDistributionError) {
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw RealDistributionError(code: .fileSystem, message: "cannot create \(path)") }
        defer { try? handle.close() }
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var left = size
        while left > 0 {
            chunk.withUnsafeMutableBytes { raw in
                for offset in stride(from: 0, to: raw.count, by: 8) {
                    raw.storeBytes(of: random.next(), toByteOffset: offset, as: UInt64.self)
                }
            }
            let count = min(left, chunkSize)
            do {
                try handle.write(contentsOf: chunk[..<count])
            } catch {
                throw RealDistributionError(code: .fileSystem, message: "cannot write \(path): \(error)")
            }
            left -= count
        }
    }

    /// Why the file at `path` differs from the one at `source` (its size, or the first differing
    /// mebibyte), or nil when they are equal.
    static func difference(of path: String, from source: String) -> String? {
        guard let copy = FileHandle(forReadingAtPath: path) else { return "\(path) cannot be opened" }
        guard let original = FileHandle(forReadingAtPath: source) else { return "\(source) cannot be opened" }
        defer {
            try? copy.close()
            try? original.close()
        }
        var offset = 0
        while true {
            let expected: Data
            let got: Data
            do {
                expected = try original.read(upToCount: chunkSize) ?? Data()
                got = try copy.read(upToCount: chunkSize) ?? Data()
            } catch {
                return "reading \(path) failed at byte \(offset): \(error)"
            }
            if expected != got {
                return got.count < expected.count
                    ? "\(path) is shorter than the source (ends before byte \(offset + expected.count))"
                    : "\(path) differs from the source in bytes \(offset)..<\(offset + got.count)"
            }
            if expected.isEmpty { return nil }
            offset += expected.count
        }
    }
}
