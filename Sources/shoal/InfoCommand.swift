import ArgumentParser
import Foundation
import ShoalCore

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
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw Terminal.fail("\(path) is a directory, not a .torrent file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw Terminal.fail("\(path): \(reason)")
        }
        defer { try? handle.close() }
        do {
            let data = try handle.read(upToCount: maxTorrentBytes + 1) ?? Data()
            guard data.count <= maxTorrentBytes else {
                throw Terminal.fail("\(path): larger than \(Terminal.size(Int64(maxTorrentBytes))), not a torrent")
            }
            return [UInt8](data)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw Terminal.fail("\(path): \(error.localizedDescription)")
        }
    }
}
