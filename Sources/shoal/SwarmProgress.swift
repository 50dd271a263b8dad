import ShoalSwarm
import Synchronization

/// The demo's progress: one bar per leecher redrawn in place on a terminal, one line a second otherwise.
final class SwarmProgress: Sendable {
    struct Row: Sendable {
        var verified: Int
        var pieceCount: Int
        var downloadRate: Double
        var uploadRate: Double
        var peers: Int

        init(statistics: TorrentStatistics) {
            verified = statistics.piecesVerified
            pieceCount = statistics.pieceCount
            downloadRate = statistics.downloadRate
            uploadRate = statistics.uploadRate
            peers = statistics.peers.count
        }

        var fraction: Double { pieceCount > 0 ? Double(verified) / Double(pieceCount) : 1 }
    }

    private struct State {
        var drawn = 0
        var lastLine = -1.0
    }

    private let names: [String]
    private let width: Int
    private let state = Mutex(State())

    init(names: [String]) {
        self.names = names
        self.width = names.map(\.count).max() ?? 0
    }

    func show(_ rows: [Row], elapsed: Double, final: Bool) {
        if Terminal.stderrIsTerminal {
            var text = state.withLock { state in
                defer { state.drawn = rows.count }
                return state.drawn > 0 ? "\u{1B}[\(state.drawn)F" : ""
            }
            for (name, row) in zip(names, rows) {
                text += "\u{1B}[2K" + bar(name: name, row: row) + "\n"
            }
            Terminal.writeStderr(text)
            return
        }
        let due = state.withLock { state in
            guard final || elapsed - state.lastLine >= 1 else { return false }
            state.lastLine = elapsed
            return true
        }
        guard due else { return }
        let parts = zip(names, rows).map { name, row in "\(name) \(Terminal.fixed(row.fraction * 100, 0))%" }
        Terminal.line("\(Terminal.fixed(elapsed, 1)) s: " + parts.joined(separator: ", "))
    }

    private func bar(name: String, row: Row) -> String {
        let padded = name + String(repeating: " ", count: width - name.count)
        return "\(padded) \(Terminal.bar(row.fraction)) "
            + "\(Terminal.fixed(row.fraction * 100, 1))%  down \(Terminal.size(Int64(row.downloadRate)))/s  "
            + "up \(Terminal.size(Int64(row.uploadRate)))/s  \(row.peers) peers"
    }
}
