import ShoalCore
import ShoalSwarm

/// The demo's closing report: how long each leecher took, whether its bytes are the seed's, who uploaded
/// how much to whom, and the lecture's distribution times for this swarm.
struct DemoReport {
    let result: LocalSwarm.Result

    var lines: [String] {
        var lines: [String] = []
        let size = result.totalLength
        let leechers = result.names.count - 1
        lines.append(
            "Report: 1 seed and \(leechers) leechers on 127.0.0.1, \"\(result.torrentName)\", "
                + "\(Terminal.size(size)) in \(result.pieceCount) pieces of \(Terminal.size(Int64(result.pieceLength)))")
        for index in 1...leechers {
            let time = result.finished[index - 1]
            let rate = time > 0 ? Double(size) / time : 0
            let check = result.mismatches[index - 1].map { "DIFFERS: \($0)" } ?? "every byte equals the seed's"
            lines.append(
                "  \(result.names[index]): complete after \(Terminal.fixed(time, 2)) s "
                    + "(\(Terminal.size(Int64(rate)))/s), \(check)")
        }

        if let link = result.magnetLink {
            lines.append(
                "  No tracker: they started from \(link), found the seed in a DHT of \(result.dhtNodes.count) nodes "
                    + "(\(result.dhtNodes.joined(separator: ", "))) and had the metadata from it after "
                    + "\(result.metadataTimes.map { Terminal.fixed($0, 2) }.joined(separator: ", ")) s.")
        }
        if let counts = result.trackerCounts {
            lines.append(
                "  The tracker (\(result.trackerURLs.joined(separator: ", "))) introduced them: at the end it counted "
                    + "\(counts.seeders) seeders, \(counts.leechers) leechers and \(counts.completed) completed downloads.")
        }

        lines.append("")
        lines.append("Who uploaded to whom (rows send, columns receive):")
        lines += matrix()

        let seedSent = result.statistics[0].uploaded
        let leechersSent = result.statistics.dropFirst().reduce(Int64(0)) { $0 + $1.uploaded }
        let moved = seedSent + leechersSent
        lines.append("")
        lines.append(
            "The seed uploaded \(Terminal.size(seedSent)) (\(Terminal.fixed(Double(seedSent) / Double(max(size, 1)), 2)) "
                + "copies); the leechers uploaded \(Terminal.size(leechersSent)) to each other, "
                + "\(Terminal.fixed(moved > 0 ? Double(leechersSent) * 100 / Double(moved) : 0, 0))% of all data moved.")
        let wasted = result.statistics.reduce(Int64(0)) { $0 + $1.wasted }
        if wasted > 0 { lines.append("Pieces that failed their hash check: \(Terminal.size(wasted)).") }

        if let upload = result.seedUpload, let slowest = result.finished.max(), slowest.isFinite {
            // The lecture's analysis with N leechers, file size F and the seed's upload u_s; the
            // leechers' own uploads are not limited on loopback, so the swarm's bound is F/u_s.
            let f = Double(size)
            let us = Double(upload)
            let clientServer = Double(leechers) * f / us
            let lowerBound = f / us
            lines.append(
                "Distribution time: the swarm took \(Terminal.fixed(slowest, 2)) s. A server alone would need "
                    + "N·F/u_s = \(leechers) × \(Terminal.size(size)) / \(Terminal.size(upload))/s = "
                    + "\(Terminal.fixed(clientServer, 2)) s; the P2P lower bound is F/u_s = \(Terminal.fixed(lowerBound, 2)) s "
                    + "(the leechers' uploads are not limited here).")
        }
        return lines
    }

    /// Uploaded bytes from each node (row) to each other node (column), by peer id.
    private func matrix() -> [String] {
        let names = result.names
        let width = max(names.map(\.count).max() ?? 0, 10)
        func pad(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var lines = [pad("") + " " + names.map(pad).joined(separator: " ")]
        for (row, name) in names.enumerated() {
            var cells: [String] = []
            for column in names.indices {
                if row == column {
                    cells.append(pad("-"))
                    continue
                }
                let bytes = result.statistics[row].byPeerID[result.peerIDs[column]]?.uploaded ?? 0
                cells.append(pad(Terminal.size(bytes)))
            }
            lines.append(pad(name) + " " + cells.joined(separator: " "))
        }
        return lines.map { "  " + $0 }
    }
}
