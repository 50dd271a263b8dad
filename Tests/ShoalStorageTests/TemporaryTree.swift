import Foundation

/// A directory of files made for a test, with pseudo-random contents of the given sizes.
struct TemporaryTree {
    let path: String
    var name: String { (path as NSString).lastPathComponent }

    init(files: [String: Int], seed: UInt8 = 1) throws {
        path = NSTemporaryDirectory() + "shoal-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var state = UInt32(seed) &* 2_654_435_761
        for (relative, size) in files {
            let full = path + "/" + relative
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            var bytes = [UInt8](repeating: 0, count: size)
            for index in bytes.indices {
                state = state &* 1_664_525 &+ 1_013_904_223
                bytes[index] = UInt8(truncatingIfNeeded: state >> 24)
            }
            guard FileManager.default.createFile(atPath: full, contents: Data(bytes)) else {
                throw CocoaError(.fileWriteUnknown)
            }
        }
    }

    /// The concatenation of the files in the given order.
    func contents(of relativePaths: [String]) throws -> [UInt8] {
        try relativePaths.flatMap { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/" + $0))) }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
