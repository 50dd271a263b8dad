import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalStorage
import ShoalSwarm
import Synchronization

/// A whole Shoal peer for one torrent on loopback, wired as the command line wires it (`SwarmRun`):
/// a ``TorrentStateMachine`` run by a ``TorrentRuntime`` on its own event loop, ``PieceStorage`` on a
/// thread pool, and (for a seed, or when asked) a ``PeerListener``. Everything it reports is kept in
/// ``reports``. ``shutdown()`` stops and closes all of it.
final class RuntimePeer: Sendable {
    /// What the runtime reported, in order.
    final class Reports: Sendable {
        struct State {
            var verified: [Int] = []
            var completed = false
            var failures: [StorageError] = []
            var peerCounts: [Int] = []
        }

        private let state = Mutex(State())

        func record(_ report: TorrentRuntime.Report) {
            state.withLock { state in
                switch report {
                case .verified(let piece, _, _): state.verified.append(piece)
                case .completed: state.completed = true
                case .peerCount(let count): state.peerCounts.append(count)
                case .failed(let error): state.failures.append(error)
                }
            }
        }

        var snapshot: State { state.withLock { $0 } }
        var completed: Bool { state.withLock { $0.completed } }
    }

    let runtime: TorrentRuntime
    let storage: PieceStorage
    let directory: String
    let listener: PeerListener?
    let reports: Reports
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool

    /// Limits for the tests' peers: the default ones, but a peer that closed (or was dropped) is
    /// retried after 100 ms instead of 10 s, so that a test sees within a second whether a dropped
    /// peer is dialled again (and so, whether it was banned).
    static let quickRetry = ConnectionPlanner.Limits(baseRetry: .milliseconds(100))

    /// A peer with every piece of `torrent` (it serves the torrent's own files).
    static func seed(
        _ torrent: TestTorrent, listenOn host: String = "127.0.0.1", limits: ConnectionPlanner.Limits = quickRetry,
        seed: UInt64 = 1, configure: (inout TorrentStateMachine.Configuration) -> Void = { _ in }
    ) async throws -> RuntimePeer {
        try await RuntimePeer(
            torrent, directory: torrent.seedDirectory, complete: true, listenOn: host, limits: limits, seed: seed,
            configure: configure)
    }

    /// A peer with nothing, downloading into a new directory `name` of the torrent's scratch directory.
    static func leecher(
        _ torrent: TestTorrent, name: String = "leecher", listenOn host: String? = nil,
        limits: ConnectionPlanner.Limits = quickRetry, seed: UInt64 = 2,
        configure: (inout TorrentStateMachine.Configuration) -> Void = { _ in }
    ) async throws -> RuntimePeer {
        try await RuntimePeer(
            torrent, directory: try torrent.emptyDirectory(name), complete: false, listenOn: host, limits: limits,
            seed: seed, configure: configure)
    }

    private init(
        _ torrent: TestTorrent, directory: String, complete: Bool, listenOn host: String?,
        limits: ConnectionPlanner.Limits, seed: UInt64, configure: (inout TorrentStateMachine.Configuration) -> Void
    ) async throws {
        var random = SplitMix64(seed: seed)
        var configuration = TorrentStateMachine.Configuration(
            infoHash: torrent.infoHash, peerID: PeerID.shoal(using: &random), geometry: torrent.geometry,
            pieceHashes: torrent.metainfo.info.pieceHashes, connections: limits, seed: random.next())
        configure(&configuration)
        let have = Bitfield(count: torrent.pieceCount, allSet: complete)
        let machine = TorrentStateMachine(configuration: configuration, have: have)
        let storage = PieceStorage(layout: torrent.layout, directory: directory)
        if !complete { try storage.createEmptyFiles() }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let reports = Reports()
        let runtime = TorrentRuntime(machine: machine, storage: storage, group: group, threadPool: pool) { report in
            reports.record(report)
        }
        var listener: PeerListener? = nil
        if let host {
            do {
                listener = try await PeerListener.bind(host: host, port: 0, runtime: runtime)
                runtime.setListenPort(listener?.port ?? 0)
            } catch {
                try? await pool.shutdownGracefully()
                try? await group.shutdownGracefully()
                throw error
            }
        }
        self.runtime = runtime
        self.storage = storage
        self.directory = directory
        self.listener = listener
        self.reports = reports
        self.group = group
        self.pool = pool
    }

    /// The listener's address on IPv4 loopback.
    var address: PeerAddress {
        PeerAddress("127.0.0.1:\(listener?.port ?? 0)")!
    }

    /// Starts the clock and dials `peers`.
    func start(peers: [PeerAddress] = []) {
        runtime.start(peers: peers)
    }

    /// Stops the runtime, closes the listener and the files, and shuts the pool and the event loop down.
    func shutdown() async {
        try? await runtime.stop().get()
        try? await listener?.close()
        try? storage.sync()
        storage.closeAll()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

/// Shuts down what a test started, whether the test returns or throws.
final class Cleanup: Sendable {
    private let actions = Mutex<[@Sendable () async -> Void]>([])

    /// Runs `body`, then every registered action, last registered first.
    static func run<Result>(_ body: (Cleanup) async throws -> Result) async throws -> Result {
        let cleanup = Cleanup()
        do {
            let result = try await body(cleanup)
            await cleanup.runAll()
            return result
        } catch {
            await cleanup.runAll()
            throw error
        }
    }

    /// Registers `value`'s shutdown and returns `value`.
    func add<Value: Sendable>(_ value: Value, _ shutdown: @escaping @Sendable (Value) async -> Void) -> Value {
        actions.withLock { $0.append { await shutdown(value) } }
        return value
    }

    func add(_ action: @escaping @Sendable () async -> Void) {
        actions.withLock { $0.append(action) }
    }

    private func runAll() async {
        let all = actions.withLock { actions in
            defer { actions = [] }
            return actions
        }
        for action in all.reversed() { await action() }
    }
}

/// Waits until `condition` holds, polling every 10 ms, for at most `limit`. Returns whether it held.
func eventually(within limit: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: limit)
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
