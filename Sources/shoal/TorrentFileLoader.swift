import ShoalCore
import ShoalStorage

/// Reading a .torrent for any command: one line on stderr and exit status 1 for anything wrong.
enum TorrentFileLoader {
    /// The largest .torrent file read (v2 torrents of huge content carry large piece layers).
    static let maxTorrentBytes = 256 << 20

    /// The file's bytes.
    static func read(_ path: String) throws -> [UInt8] {
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

    /// The parsed torrent.
    static func load(_ path: String) throws -> Metainfo {
        let bytes = try read(path)
        do { return try Metainfo(parsing: bytes) } catch { throw Terminal.fail("\(path): \(error)") }
    }
}
