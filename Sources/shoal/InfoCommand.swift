import ArgumentParser
import FoundationEssentials
import ShoalCore
import ShoalStorage

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what a .torrent file or a magnet link holds.")

    @Argument(help: "A .torrent file or a magnet link.")
    var source: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    /// The largest .torrent file read (v2 torrents of huge content carry large piece layers).
    static let maxTorrentBytes = 256 << 20

    func run() throws {
        let report: TorrentReport
        if source.lowercased().hasPrefix("magnet:") {
            do {
                report = TorrentReport(try MagnetLink(parsing: source))
            } catch {
                throw Terminal.fail(error.description)
            }
        } else {
            let bytes = try Self.read(source)
            do {
                report = TorrentReport(try Metainfo(parsing: bytes))
            } catch {
                throw Terminal.fail("\(source): \(error)")
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(report.text, terminator: "")
        }
    }

    private static func read(_ path: String) throws -> [UInt8] {
        do {
            return try WholeFile.read(path, limit: maxTorrentBytes)
        } catch {
            switch error.code {
            case .isDirectory: throw Terminal.fail("\(path) is a directory, not a .torrent file")
            case .fileNotFound: throw Terminal.fail("\(path): no such file")
            case .invalidArgument:
                throw Terminal.fail("\(path): larger than \(Terminal.size(Int64(maxTorrentBytes))), not a torrent")
            default: throw Terminal.fail(error.description)
            }
        }
    }
}
