import Foundation
import ShoalCore
import Testing

@testable import ShoalStorage

@Suite("Content scanner")
struct ContentScannerTests {
    @Test func listsRegularFilesInMktorrentOrder() throws {
        let root = try TemporaryTree(files: [
            "a0": 1, "a/c": 2, "a-b": 3, "a b": 4, "A": 5, "sub/deep/é.txt": 6, "empty": 0, ".hidden": 7,
        ])
        defer { root.remove() }
        let content = try ContentScanner.scan(root.path)
        #expect(content.isDirectory)
        #expect(content.name == root.name)
        #expect(content.files.map(\.path.string) == [".hidden", "A", "a b", "a-b", "a/c", "a0", "empty", "sub/deep/é.txt"])
        #expect(content.files.map(\.length) == [7, 5, 4, 3, 2, 1, 0, 6])
        #expect(content.totalLength == 28)
    }

    @Test func followsSymbolicLinksButNotLoops() throws {
        let root = try TemporaryTree(files: ["dir/file": 3])
        defer { root.remove() }
        try FileManager.default.createSymbolicLink(atPath: root.path + "/link", withDestinationPath: "dir/file")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/dir/loop", withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/dangling", withDestinationPath: "nowhere")
        let content = try ContentScanner.scan(root.path)
        #expect(content.files.map(\.path.string) == ["dir/file", "link"])
    }

    @Test func scansASingleFile() throws {
        let root = try TemporaryTree(files: ["only.bin": 10])
        defer { root.remove() }
        let content = try ContentScanner.scan(root.path + "/only.bin")
        #expect(!content.isDirectory)
        #expect(content.name == "only.bin")
        #expect(content.files.map(\.path.string) == ["only.bin"])
    }

    @Test func refusesWhatCannotBeShared() throws {
        #expect(throws: StorageError.self) { try ContentScanner.scan("/nonexistent/shoal/path") }
        let empty = try TemporaryTree(files: [:])
        defer { empty.remove() }
        #expect(throws: StorageError.self) { try ContentScanner.scan(empty.path) }
        let bad = try TemporaryTree(files: ["bad\nname": 1])
        defer { bad.remove() }
        do {
            _ = try ContentScanner.scan(bad.path)
            Issue.record("a name with a newline was accepted")
        } catch {
            #expect(error.description.contains("control character 10"))
        }
    }
}
