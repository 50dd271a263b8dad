import FoundationEssentials
import ShoalCore

/// What `shoal info` shows, as text or as JSON (one shape for torrents and magnet links;
/// fields a source does not have are absent).
struct TorrentReport: Encodable {
    struct File: Encodable {
        var path: String
        var length: Int64
        var offset: Int64
        var padding: Bool
        var attributes: String?
        var symlinkTarget: String?
        var piecesRoot: String?
    }

    var kind: String
    var name: String?
    var infoHashV1: String?
    var infoHashV2: String?
    var metaVersion: Int?
    var pieceLength: Int?
    var pieceCount: Int?
    var totalSize: Int64?
    var `private`: Bool?
    var source: String?
    var comment: String?
    var createdBy: String?
    var creationDate: Int64?
    var trackers: [[String]]
    var webSeeds: [String]
    var peers: [String]?
    var selectOnly: [String]?
    var files: [File]?
    var v2Files: [File]?
    var magnet: String
    var warnings: [String]?

    init(_ metainfo: Metainfo) {
        let info = metainfo.info
        kind = "torrent"
        name = info.name
        infoHashV1 = metainfo.infoHashV1?.hex
        infoHashV2 = metainfo.infoHashV2?.hex
        metaVersion = info.metaVersion
        pieceLength = info.pieceLength
        pieceCount = info.pieceCount
        totalSize = info.contentLength
        `private` = info.isPrivate
        source = info.source
        comment = metainfo.comment
        createdBy = metainfo.createdBy
        creationDate = metainfo.creationDate
        trackers = metainfo.trackers
        webSeeds = metainfo.webSeeds
        files = info.files.map(Self.file)
        // A v2-only torrent's files are the tree's; list the tree apart only for hybrids.
        v2Files = info.hasV1 ? info.fileTree?.map(Self.file) : nil
        magnet = metainfo.magnetLink.uri
        warnings = metainfo.warnings.isEmpty ? nil : metainfo.warnings
    }

    init(_ link: MagnetLink) {
        kind = "magnet"
        name = link.displayName
        infoHashV1 = link.v1InfoHash?.hex
        infoHashV2 = link.v2InfoHash?.hex
        trackers = link.trackers.map { [$0] }
        webSeeds = link.webSeeds
        peers = link.peers
        selectOnly = link.selectOnly.isEmpty
            ? nil : link.selectOnly.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
        magnet = link.uri
    }

    private static func file(_ file: TorrentFile) -> File {
        File(
            path: file.path.string, length: file.length, offset: file.offset, padding: file.isPadding,
            attributes: file.attributes.isEmpty ? nil : file.attributes.attr,
            symlinkTarget: file.symlinkTarget?.string, piecesRoot: file.piecesRoot?.hex)
    }

    /// The report for people, in the spirit of transmission-show.
    var text: String {
        var lines: [String] = []
        func line(_ label: String, _ value: String?) {
            if let value { lines.append("\(label + String(repeating: " ", count: max(1, 14 - label.count)))\(value)") }
        }
        line("Name:", name.map { PrintableText.escaped($0) })
        line("Info-hash v1:", infoHashV1)
        line("Info-hash v2:", infoHashV2)
        if kind == "torrent" {
            line("Version:", infoHashV1 != nil && infoHashV2 != nil ? "hybrid v1+v2" : (infoHashV2 != nil ? "v2" : "v1"))
        }
        line("Total size:", totalSize.map { "\(Terminal.size($0)) (\($0) bytes)" })
        if let pieceLength, let pieceCount {
            line("Pieces:", "\(pieceCount) of \(Terminal.size(Int64(pieceLength))) (\(pieceLength) bytes)")
        }
        line("Private:", `private`.map { $0 ? "yes" : "no" })
        line("Source:", source.map { PrintableText.escaped($0) })
        line("Comment:", comment.map { PrintableText.escaped($0) })
        line("Created by:", createdBy.map { PrintableText.escaped($0) })
        line("Created on:", creationDate.map {
            Date(timeIntervalSince1970: TimeInterval($0)).formatted(.iso8601)
        })
        line("Magnet:", magnet)
        lines.append("")
        lines.append("Trackers:" + (trackers.isEmpty ? " none" : ""))
        for (index, tier) in trackers.enumerated() {
            for url in tier { lines.append("  tier \(index + 1): \(PrintableText.escaped(url))") }
        }
        if !webSeeds.isEmpty {
            lines.append("Web seeds:")
            for url in webSeeds { lines.append("  \(PrintableText.escaped(url))") }
        }
        if let peers, !peers.isEmpty {
            lines.append("Peers:")
            for peer in peers { lines.append("  \(PrintableText.escaped(peer))") }
        }
        if let selectOnly { line("Select only:", selectOnly.joined(separator: ",")) }
        if let files {
            appendFiles(files, title: "Files", to: &lines)
        }
        if let v2Files {
            appendFiles(v2Files, title: "v2 file tree", to: &lines)
        }
        if let warnings {
            lines.append("")
            lines.append("Warnings:")
            for warning in warnings { lines.append("  \(warning)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func appendFiles(_ files: [File], title: String, to lines: inout [String]) {
        let padding = files.filter(\.padding).count
        lines.append("")
        lines.append("\(title) (\(files.count - padding)\(padding > 0 ? ", and \(padding) padding" : "")):")
        for file in files {
            var notes: [String] = []
            if file.padding { notes.append("padding") }
            if let attributes = file.attributes, !file.padding { notes.append("attr \(attributes)") }
            if let target = file.symlinkTarget { notes.append("-> \(PrintableText.escaped(target))") }
            let suffix = notes.isEmpty ? "" : " [\(notes.joined(separator: ", "))]"
            lines.append("  \(PrintableText.escaped(file.path)) (\(Terminal.size(file.length)))\(suffix)")
        }
    }
}
