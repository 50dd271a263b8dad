import Testing

@testable import ShoalCore

@Suite("Torrent paths")
struct TorrentPathTests {
    @Test func acceptsOrdinaryNames() throws {
        let path = try TorrentPath(validating: ["Album", "disc 1", "01 — déjà vu.flac", ".hidden", "...", "a\\b"])
        #expect(path.string == "Album/disc 1/01 — déjà vu.flac/.hidden/.../a\\b")
        #expect(try TorrentPath(validating: [String(repeating: "é", count: 127)]).components.count == 1)
    }

    @Test func limitsComponentBytesNotCharacters() {
        // 128 two-byte characters are 256 bytes: one over the limit.
        #expect(throws: TorrentPathError(.componentTooLong(256), component: String(repeating: "é", count: 128))) {
            try TorrentPath(validating: [String(repeating: "é", count: 128)])
        }
    }

    @Test func limitsDepth() {
        let deep = Array(repeating: "d", count: TorrentPath.maxDepth + 1)
        #expect(throws: TorrentPathError.self) { try TorrentPath(validating: deep) }
        #expect((try? TorrentPath(validating: Array(repeating: "d", count: TorrentPath.maxDepth))) != nil)
    }

    @Test func ordersAsMktorrentDoes() throws {
        // mktorrent compares whole paths byte-wise, so "a b" and "a-b" come before "a/c", and "a/c" before "a0".
        let names = [["a0"], ["a", "c"], ["a-b"], ["a b"], ["A"], ["_x"], ["é"]]
        let sorted = try names.map { try TorrentPath(validating: $0) }.sorted().map(\.string)
        #expect(sorted == ["A", "_x", "a b", "a-b", "a/c", "a0", "é"])
    }

    @Test func errorTextEscapesControlCharacters() {
        let error = TorrentPathError(.controlCharacter(0x1B), component: "x\u{1B}[31m")
        #expect(error.description == "path component \"x\\u{1b}[31m\" contains control character 27")
    }

    @Test func readsAttributes() {
        #expect(FileAttributes(attr: Array("xhpl?".utf8)) == [.executable, .hidden, .padding, .symlink])
        #expect(FileAttributes(attr: Array("zz".utf8)).isEmpty)
        #expect(FileAttributes([.executable, .padding]).attr == "px")
    }
}
