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

    func run() throws {
        let report: TorrentReport
        if source.lowercased().hasPrefix("magnet:") {
            do {
                report = TorrentReport(try MagnetLink(parsing: source))
            } catch {
                throw Terminal.fail(error.description)
            }
        } else {
            report = TorrentReport(try TorrentFileLoader.load(source))
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
}
