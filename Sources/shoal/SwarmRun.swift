import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalStorage
import ShoalSwarm
import Synchronization

/// What `shoal get` and `shoal seed` share: read the torrent, check the data already on disk, run the
/// torrent on the network until it is complete (and then, when seeding, until interrupted).
struct SwarmRun {
    let metainfo: Metainfo
    let directory: String
    let port: Int
    let peers: [PeerAddress]

    /// Verified pieces already on disk (all cores), with a line of progress.
    func check(layout: FileLayout) throws -> Bitfield {
        let total = layout.totalLength
        let bar = Terminal.stderrIsTerminal ? ProgressBar(label: "Checking") : nil
        defer { bar?.finish() }
        var progress: (@Sendable (Int64) -> Void)? = nil
        if let bar {
            progress = { done in bar.update(done: done, total: total) }
        }
        do {
            return try Recheck().verify(
                layout: layout, pieceHashes: metainfo.info.pieceHashes, directory: directory, progress: progress)
        } catch {
            throw Terminal.fail(error.description)
        }
    }

    /// Runs until complete; with `keepSeeding`, until interrupted.
    func run(have: Bitfield, layout: FileLayout, keepSeeding: Bool) async throws {
        guard let infoHash = metainfo.infoHashV1 else { throw Terminal.fail("only v1 and hybrid torrents can be downloaded yet") }
        var random = SplitMix64(seed: UInt64(truncatingIfNeeded: Terminal.now().bitPattern))
        let configuration = TorrentStateMachine.Configuration(
            infoHash: infoHash, peerID: PeerID.shoal(using: &random), geometry: layout.geometry,
            pieceHashes: metainfo.info.pieceHashes, seed: random.next())
        let machine = TorrentStateMachine(configuration: configuration, have: have)
        let storage = PieceStorage(layout: layout, directory: directory)
        if !have.isComplete {
            do { try storage.createEmptyFiles() } catch { throw Terminal.fail(error.description) }
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let progress = Progress(total: have.count, have: have.setCount, totalBytes: layout.totalLength)
        let (reports, continuation) = AsyncStream.makeStream(of: TorrentRuntime.Report.self)
        let runtime = TorrentRuntime(machine: machine, storage: storage, group: group, threadPool: pool) { report in
            continuation.yield(report)
        }
        let listener: PeerListener
        do {
            listener = try await PeerListener.bind(host: "::", port: port, runtime: runtime)
        } catch {
            throw Terminal.fail("cannot listen on port \(port): \(error)")
        }
        Terminal.line("Listening on port \(listener.port); \(have.setCount) of \(have.count) pieces verified")
        runtime.start(peers: peers)

        var failure: StorageError?
        var completed = have.isComplete
        if completed { Terminal.line("Complete: seeding") }
        if !completed || keepSeeding {
            for await report in reports {
                switch report {
                case .verified(_, let count, _):
                    progress.verified(count)
                case .peerCount(let count):
                    progress.peers(count)
                case .completed:
                    completed = true
                    progress.finish()
                    Terminal.line("Complete: all \(have.count) pieces verified")
                case .failed(let error):
                    failure = error
                }
                if failure != nil || (completed && !keepSeeding) { break }
            }
        }
        try? await runtime.stop().get()
        try? await listener.close()
        try? storage.sync()
        storage.closeAll()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
        if let failure { throw Terminal.fail(failure.description) }
    }
}

/// Progress lines: a bar on a terminal, one line per second otherwise.
final class Progress: Sendable {
    private struct State {
        var have: Int
        var peers = 0
        var lastLine = 0.0
        let start = Terminal.now()
    }

    private let total: Int
    private let totalBytes: Int64
    private let state: Mutex<State>

    init(total: Int, have: Int, totalBytes: Int64) {
        self.total = total
        self.totalBytes = totalBytes
        self.state = Mutex(State(have: have))
    }

    func verified(_ count: Int) {
        state.withLock { $0.have = count }
        show()
    }

    func peers(_ count: Int) {
        state.withLock { $0.peers = count }
        show()
    }

    func finish() {
        if Terminal.stderrIsTerminal { Terminal.writeStderr("\r\u{1B}[2K") }
    }

    private func show() {
        let now = Terminal.now()
        let line: String? = state.withLock { state in
            guard now - state.lastLine >= (Terminal.stderrIsTerminal ? 0.1 : 1.0) else { return nil }
            state.lastLine = now
            let fraction = total > 0 ? Double(state.have) / Double(total) : 1
            let elapsed = max(now - state.start, 0.001)
            let rate = fraction * Double(totalBytes) / elapsed
            return "\(Terminal.fixed(fraction * 100, 1))% of \(Terminal.size(totalBytes)), \(state.peers) peers, \(Terminal.size(Int64(rate)))/s"
        }
        guard let line else { return }
        if Terminal.stderrIsTerminal {
            Terminal.writeStderr("\r\u{1B}[2K" + line)
        } else {
            Terminal.line(line)
        }
    }
}
