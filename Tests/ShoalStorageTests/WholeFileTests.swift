import Testing

@testable import ShoalStorage

@Suite("Whole files")
struct WholeFileTests {
    @Test func writesAtomicallyAndReadsBack() throws {
        let tree = try TemporaryTree(files: [:])
        defer { tree.remove() }
        let path = tree.path + "/out.torrent"
        try WholeFile.writeAtomically([1, 2, 3], to: path, replace: false)
        #expect(try WholeFile.read(path, limit: 10) == [1, 2, 3])
        // Without replace an existing file is kept; with it, replaced whole.
        #expect(throws: StorageError.self) { try WholeFile.writeAtomically([9], to: path, replace: false) }
        #expect(try WholeFile.read(path, limit: 10) == [1, 2, 3])
        try WholeFile.writeAtomically([4, 5], to: path, replace: true)
        #expect(try WholeFile.read(path, limit: 10) == [4, 5])
        // No temporary file is left behind.
        #expect(try ContentScanner.scan(tree.path).files.map(\.path.string) == ["out.torrent"])
    }

    @Test func refusesWhatIsNotASmallFile() throws {
        let tree = try TemporaryTree(files: ["big": 100])
        defer { tree.remove() }
        #expect(throws: StorageError.self) { try WholeFile.read(tree.path + "/big", limit: 99) }
        #expect(try WholeFile.read(tree.path + "/big", limit: 100).count == 100)
        do {
            _ = try WholeFile.read(tree.path, limit: 100)
            Issue.record("read a directory")
        } catch {
            #expect(error.code == .isDirectory)
        }
        do {
            _ = try WholeFile.read(tree.path + "/missing", limit: 100)
            Issue.record("read a missing file")
        } catch {
            #expect(error.code == .fileNotFound)
        }
    }
}
