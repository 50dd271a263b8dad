import ShoalFuzzChecks
import Testing

/// Replays the checked-in fuzz corpus (seeds and past findings) through the fuzz checks, so that
/// every ordinary test run keeps what fuzzing once established.
@Suite("Fuzz corpus replay")
struct FuzzCorpusTests {
    static let corpusRoot: String = {
        let file = #filePath
        let tests = file.split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return tests + "/Fuzz/Corpus"
    }()

    @Test(arguments: [
        "bencode", "metainfo", "magnet", "wire", "krpc", "tracker-http", "tracker-udp", "tracker-state", "extensions", "lsd",
    ])
    func replaysCorpus(target: String) throws {
        let check = try #require(FuzzChecks.check(named: target))
        let directory = Self.corpusRoot + "/" + target
        let names = try #require(CorpusReplay.list(directory), "no corpus at \(directory)")
        #expect(names.count >= 5, "the \(target) corpus should hold seeds")
        for name in names {
            let bytes = try #require(CorpusReplay.read(directory + "/" + name))
            check(bytes)
        }
    }
}
