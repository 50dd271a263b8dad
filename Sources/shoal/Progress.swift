import ShoalSwarm

/// `shoal get`'s progress: one line redrawn on a terminal, one printed line a second otherwise, with the
/// verified share, peers, rates both ways and the time left.
struct Progress {
    let totalBytes: Int64

    func show(_ statistics: TorrentStatistics, seeding: Bool) {
        let line = Self.line(statistics, totalBytes: totalBytes, seeding: seeding)
        if Terminal.stderrIsTerminal {
            Terminal.writeStderr("\r\u{1B}[2K" + line)
        } else {
            Terminal.line(line)
        }
    }

    func finish() {
        if Terminal.stderrIsTerminal { Terminal.writeStderr("\r\u{1B}[2K") }
    }

    /// `42.0% of 1.00 GiB, 5 peers, down 12.3 MiB/s, up 1.2 MiB/s, ETA 0:47`.
    static func line(_ statistics: TorrentStatistics, totalBytes: Int64, seeding: Bool) -> String {
        let count = max(statistics.pieceCount, 1)
        let fraction = Double(statistics.piecesVerified) / Double(count)
        var parts = [
            seeding ? "Seeding \(Terminal.size(totalBytes))" : "\(Terminal.fixed(fraction * 100, 1))% of \(Terminal.size(totalBytes))",
            "\(statistics.peers.count) peer\(statistics.peers.count == 1 ? "" : "s")",
            "down \(Terminal.size(Int64(statistics.downloadRate)))/s",
            "up \(Terminal.size(Int64(statistics.uploadRate)))/s",
        ]
        if !seeding {
            // What is left of the wanted pieces (skipped files are not waited for).
            let left = Double(totalBytes) * Double(statistics.piecesRemaining) / Double(count)
            parts.append("ETA " + eta(seconds: statistics.downloadRate > 0 ? left / statistics.downloadRate : nil))
        }
        return parts.joined(separator: ", ")
    }

    /// `1:02:03`, `4:05`, or `--:--` when unknown or beyond a week.
    static func eta(seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0, seconds < 7 * 86400 else { return "--:--" }
        let total = Int(seconds.rounded(.up))
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        let two = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(two(minutes)):\(two(secs))" : "\(minutes):\(two(secs))"
    }
}
