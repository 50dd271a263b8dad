import Foundation
import ShoalTestSupport

/// A directory tree to share: files (paths below the top directory, sizes, contents from a seed)
/// and empty directories. Written to disk by the tests, then handed to Shoal and the other tools.
struct FileTree: Sendable, CustomStringConvertible {
    struct File: Sendable {
        /// The names below the top directory.
        var components: [String]
        var size: Int
        var isExecutable = false

        var relativePath: String { components.joined(separator: "/") }
    }

    /// Which names a generated tree may use.
    enum NameStyle: Sendable {
        /// Lower-case ASCII letters and digits: every tool orders these the same way.
        case portable
        /// Both cases, spaces, punctuation that sorts around `/`, accents, CJK and emoji.
        case wide
    }

    var files: [File]
    var emptyDirectories: [[String]] = []
    /// Seeds the file contents.
    var contentSeed: UInt64 = 1

    /// The files in the order mktorrent writes them (and Shoal must): by the bytes of the path.
    var sortedFiles: [File] {
        files.sorted { $0.relativePath.utf8.lexicographicallyPrecedes($1.relativePath.utf8) }
    }

    var totalSize: Int { files.reduce(0) { $0 + $1.size } }

    var description: String {
        files.map { "\($0.relativePath) (\($0.size))" }.joined(separator: ", ")
    }

    /// A tree from `path: size` pairs (paths with `/` between names).
    init(_ entries: [(String, Int)], emptyDirectories: [String] = [], contentSeed: UInt64 = 1) {
        files = entries.map { File(components: $0.0.split(separator: "/").map(String.init), size: $0.1) }
        self.emptyDirectories = emptyDirectories.map { $0.split(separator: "/").map(String.init) }
        self.contentSeed = contentSeed
    }

    private init(files: [File], emptyDirectories: [[String]], contentSeed: UInt64) {
        self.files = files
        self.emptyDirectories = emptyDirectories
        self.contentSeed = contentSeed
    }

    /// Writes the tree with `root` as its top directory (created if needed).
    func write(to root: URL) throws {
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: root, withIntermediateDirectories: true)
        for directory in emptyDirectories {
            try fileManager.createDirectory(
                at: root.appendingPathComponent(directory.joined(separator: "/"), isDirectory: true),
                withIntermediateDirectories: true)
        }
        for (index, file) in files.enumerated() {
            let url = root.appendingPathComponent(file.relativePath)
            try fileManager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Self.contents(size: file.size, seed: contentSeed &* 1_000_003 &+ UInt64(index)).write(to: url)
            try fileManager.setAttributes(
                [.posixPermissions: file.isExecutable ? 0o755 : 0o644], ofItemAtPath: url.path)
        }
    }

    /// `size` pseudo-random bytes from `seed`.
    static func contents(size: Int, seed: UInt64) -> Data {
        var generator = SeededGenerator(seed: seed)
        var words = [UInt64](repeating: 0, count: (size + 7) / 8)
        for index in words.indices { words[index] = generator.next() }
        return words.withUnsafeBytes { Data($0.prefix(size)) }
    }

    // MARK: Random trees

    /// A seeded random tree: `minFiles` to `maxFiles` files of 0 to `maxFileSize` bytes (at least one
    /// byte in all), folders up to `maxDepth` deep, some empty folders; names unique in their folder
    /// even ignoring case, never starting or ending with a space, never ending with a dot.
    static func random(
        seed: UInt64, style: NameStyle, minFiles: Int = 1, maxFiles: Int = 12, maxDepth: Int = 4,
        maxFileSize: Int = 200_000, emptyFiles: Bool = true, emptyDirectories: Bool = true, executables: Bool = false
    ) -> FileTree {
        var builder = Builder(
            generator: SeededGenerator(seed: seed), style: style, maxFiles: maxFiles, maxDepth: maxDepth,
            maxFileSize: maxFileSize, emptyFiles: emptyFiles, emptyDirectories: emptyDirectories,
            executables: executables)
        builder.fill(below: [], depth: 0)
        var extra = 0
        while builder.files.count < max(1, minFiles) {
            extra += 1
            let name = "extra \(extra)"
            let taken = builder.files.contains { $0.components[0].lowercased() == name }
                || builder.emptyFolders.contains { $0[0].lowercased() == name }
            if !taken {
                builder.files.append(File(components: [name], size: 1 + builder.generator.next(upTo: maxFileSize)))
            }
        }
        if builder.files.allSatisfy({ $0.size == 0 }) { builder.files[0].size = 1 + maxFileSize / 2 }
        return FileTree(files: builder.files, emptyDirectories: builder.emptyFolders, contentSeed: seed)
    }

    private struct Builder {
        var generator: SeededGenerator
        let style: NameStyle
        let maxFiles: Int
        let maxDepth: Int
        let maxFileSize: Int
        let emptyFiles: Bool
        let emptyDirectories: Bool
        let executables: Bool
        var files: [File] = []
        var emptyFolders: [[String]] = []

        static let portableCharacters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        static let wideCharacters = Array(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                + " -_.,+=~@#()[]'!&%$" + "éüßñÅΩжé日本語🐟🎉")

        mutating func fill(below prefix: [String], depth: Int) {
            let count = depth == 0 ? 1 + generator.next(upTo: 5) : generator.next(upTo: 5)
            var used: Set<String> = []
            var madeAnything = false
            for _ in 0..<count where files.count < maxFiles {
                let name = uniqueName(avoiding: &used)
                if depth < maxDepth && generator.next(upTo: 3) == 0 {
                    fill(below: prefix + [name], depth: depth + 1)
                    madeAnything = true
                } else {
                    let size = emptyFiles && generator.next(upTo: 7) == 0 ? 0 : 1 + generator.next(upTo: maxFileSize)
                    let executable = executables && generator.next(upTo: 4) == 0
                    files.append(File(components: prefix + [name], size: size, isExecutable: executable))
                    madeAnything = true
                }
            }
            if !madeAnything && !prefix.isEmpty && emptyDirectories { emptyFolders.append(prefix) }
            if !madeAnything && !prefix.isEmpty && !emptyDirectories {
                let name = uniqueName(avoiding: &used)
                files.append(File(components: prefix + [name], size: 1 + generator.next(upTo: 999)))
            }
        }

        mutating func uniqueName(avoiding used: inout Set<String>) -> String {
            while true {
                let name = randomName()
                if used.insert(name.lowercased()).inserted { return name }
            }
        }

        mutating func randomName() -> String {
            let characters = style == .portable ? Self.portableCharacters : Self.wideCharacters
            while true {
                let length = 1 + generator.next(upTo: 10)
                let name = String((0..<length).map { _ in characters[generator.next(upTo: characters.count)] })
                if name.hasPrefix(" ") || name.hasSuffix(" ") || name.hasSuffix(".") { continue }
                return name
            }
        }
    }
}
