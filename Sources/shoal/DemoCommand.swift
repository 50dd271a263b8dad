import ArgumentParser
import FoundationEssentials
import Glibc
import ShoalCore
import ShoalStorage

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole swarm on loopback: a seed and leechers, their progress, and a report.",
        discussion: """
            Makes a sample folder, starts a tracker on 127.0.0.1 (UDP and HTTP), creates the sample's torrent \
            announcing to it, and starts one seed and several leechers in this process, each with its own port \
            on 127.0.0.1 and its own folder under a temporary directory. The peers know only the tracker: they \
            find each other through it. The seed's upload is limited \
            (--seed-upload) so that the leechers must trade pieces among themselves, as in a real swarm. \
            When all are done, every byte is compared with the seed's, a report tells who uploaded to whom, \
            and the temporary directory is removed.

            With --trackerless there is no tracker: three DHT nodes on 127.0.0.1 make a small DHT, the seed \
            announces the torrent there, and each leecher starts from a bare magnet link (the info-hash and \
            a name), finds the seed through the DHT, fetches the torrent's metadata from it and downloads.
            """)

    @Option(help: "How many leechers (1 to 32).")
    var leechers: Int = 4

    @Option(help: "The size of the sample, e.g. 32M or 1G.")
    var size: ByteCount = ByteCount(bytes: 32 << 20)

    @Option(help: "Bytes per piece, a multiple of 16 KiB (default: chosen from the size).")
    var pieceLength: Int?

    @Option(help: "The seed's upload limit per second, e.g. 8M; 0 for none.")
    var seedUpload: ByteCount = ByteCount(bytes: 8 << 20)

    @Option(help: "Work in this directory and keep it (default: a temporary directory, removed at the end).")
    var directory: String?

    @Option(help: "Give up after this many seconds.")
    var timeout: Int = 300

    @Flag(help: "No tracker: a loopback DHT, and leechers that start from a bare magnet link.")
    var trackerless = false

    func validate() throws {
        guard (1...32).contains(leechers) else { throw ValidationError("--leechers must be between 1 and 32") }
        guard (1...(64 << 30)).contains(size.bytes) else { throw ValidationError("--size must be between 1 B and 64 GiB") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let pieceLength {
            do { try TorrentCreator.validate(pieceLength: pieceLength) } catch {
                throw ValidationError(error.description)
            }
        }
    }

    func run() async throws {
        let work: String
        if let directory {
            do { try Directories.make(directory) } catch {
                throw Terminal.fail("cannot make \(directory): \(error)")
            }
            work = directory
        } else {
            work = try Self.temporaryDirectory()
        }
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: work) } }

        var swarm = LocalSwarm(
            work: work, leechers: leechers, size: size.bytes, pieceLength: pieceLength,
            seedUpload: seedUpload.bytes > 0 ? seedUpload.bytes : nil, timeout: Double(timeout))
        swarm.trackerless = trackerless
        let result = try await swarm.run()
        Terminal.line("")
        for line in DemoReport(result: result).lines { Terminal.line(line) }
        if directory != nil { Terminal.line("Kept \(work)") }
        if !result.allIntact { throw ExitCode(1) }
    }

    private static func temporaryDirectory() throws -> String {
        var base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if base.isEmpty { base = "/tmp" }
        var template = Array((base + "/shoal-demo.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Terminal.fail("cannot make a temporary directory in \(base): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}
