import ArgumentParser
import FoundationEssentials
import ShoalCore
import ShoalStorage
import Glibc
import Synchronization

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a .torrent file of a file or a directory.",
        discussion: """
            Files in a directory are ordered byte-wise by path and empty files are kept, as mktorrent \
            does, so the same content and options give the same info-hash. Hashing runs on every core.
            """)

    @Argument(help: "The file or directory to share.")
    var path: String

    @Option(name: .shortAndLong, help: "Where to write the torrent (default: NAME.torrent).")
    var output: String?

    @Option(help: "Bytes per piece, a multiple of 16 KiB (default: chosen from the size).")
    var pieceLength: Int?

    @Option(
        name: .customLong("tracker"),
        help: "A tracker URL; repeat for more tiers; URLs joined by commas form one tier.")
    var trackers: [String] = []

    @Option(name: .customLong("web-seed"), help: "A web seed URL (BEP 19); repeat for more.")
    var webSeeds: [String] = []

    @Flag(help: "Mark the torrent private (BEP 27): peers only from its trackers.")
    var `private` = false

    @Option(help: "A comment.")
    var comment: String?

    @Option(help: "The source field (changes the info-hash; private trackers use it).")
    var source: String?

    @Option(help: "The torrent's name (default: the file or directory name).")
    var name: String?

    @Option(help: "Hashing threads (default: every core).")
    var threads: Int?

    @Flag(help: "Leave out the creation date, so that the file is the same on every run.")
    var noDate = false

    @Flag(help: "Overwrite the output file if it exists.")
    var force = false

    func run() throws {
        if let threads, threads < 1 { throw Terminal.fail("--threads must be at least 1") }
        if let pieceLength {
            do { try TorrentCreator.validate(pieceLength: pieceLength) } catch { throw Terminal.fail(error.description) }
        }
        let content: ScannedContent
        do { content = try ContentScanner.scan(path) } catch { throw Terminal.fail(error.description) }
        let name = self.name ?? content.name
        let destination = output ?? "\(name).torrent"
        if !force && access(destination, F_OK) == 0 {
            throw Terminal.fail("\(destination) exists (use --force to overwrite)")
        }

        let options = TorrentCreator.Options(
            pieceLength: pieceLength,
            trackers: trackers.map { $0.split(separator: ",").map(String.init) },
            webSeeds: webSeeds, isPrivate: `private`, comment: comment, source: source, name: self.name,
            createdBy: ShoalVersion.createdBy,
            creationDate: noDate ? nil : Int64(Date().timeIntervalSince1970), threads: threads)
        let bar = Terminal.stderrIsTerminal ? ProgressBar(label: "Hashing") : nil
        let start = Terminal.now()
        var progress: (@Sendable (Int64, Int64) -> Void)? = nil
        if let bar {
            progress = { done, total in bar.update(done: done, total: total) }
        }
        let metainfo: Metainfo
        do {
            metainfo = try TorrentCreator(options: options).create(from: content, progress: progress)
        } catch {
            bar?.finish()
            throw Terminal.fail(error.description)
        }
        let seconds = Terminal.now() - start
        bar?.finish()

        let bytes = metainfo.encoded()
        do {
            try WholeFile.writeAtomically(bytes, to: destination, replace: force)
        } catch {
            throw Terminal.fail("cannot write \(error)")
        }
        let info = metainfo.info
        let total = info.totalLength
        let rate = seconds > 0 ? Double(total) / seconds / 1e9 : 0
        print("Created \(destination): \(info.files.count) file\(info.files.count == 1 ? "" : "s"), \(Terminal.size(total)), \(info.pieceCount) pieces of \(Terminal.size(Int64(info.pieceLength)))")
        print("Hashed in \(Terminal.fixed(seconds, 3)) s (\(Terminal.fixed(rate, 2)) GB/s)")
        print("Info-hash: \(metainfo.infoHash.hex)")
        print("Magnet: \(metainfo.magnetLink.uri)")
    }
}

/// A one-line progress bar on standard error, redrawn at most ten times a second.
final class ProgressBar: Sendable {
    private let label: String
    private let lastDraw = Mutex<Double>(0)

    init(label: String) {
        self.label = label
    }

    func update(done: Int64, total: Int64) {
        let now = Terminal.now()
        let due = lastDraw.withLock { last in
            guard now - last >= 0.1 || done == total else { return false }
            last = now
            return true
        }
        guard due, total > 0 else { return }
        let fraction = Double(done) / Double(total)
        Terminal.writeStderr(
            "\r\(label) \(Terminal.bar(fraction)) \(Terminal.fixed(fraction * 100, 1))% of \(Terminal.size(total))")
    }

    func finish() {
        Terminal.writeStderr("\r\u{1B}[2K")
    }
}
