import NIOCore
import NIOPosix
import ShoalCore
import ShoalStorage
import ShoalSwarm

/// One torrent on the network: its runtime, its listening socket and its storage, started together
/// and stopped together. `shoal get`, `shoal seed`, `shoal demo` and the tests run torrents this way.
public final class RunningTorrent: Sendable {
    public let runtime: TorrentRuntime
    public let listener: PeerListener
    public let storage: PieceStorage

    /// The port peers reach it on.
    public var port: Int { listener.port }

    private init(runtime: TorrentRuntime, listener: PeerListener, storage: PieceStorage) {
        self.runtime = runtime
        self.listener = listener
        self.storage = storage
    }

    /// Listens on `host`:`port` (0: a free port), then dials `peers`. Reports come from the event
    /// loop and the thread pool; they must not block.
    public static func start(
        machine: TorrentStateMachine, storage: PieceStorage, group: any EventLoopGroup, threadPool: NIOThreadPool,
        host: String = "::", port: Int, peers: [PeerAddress], report: @escaping @Sendable (TorrentRuntime.Report) -> Void
    ) async throws -> RunningTorrent {
        let runtime = TorrentRuntime(
            machine: machine, storage: storage, group: group, threadPool: threadPool, report: report)
        let listener = try await PeerListener.bind(host: host, port: port, runtime: runtime)
        runtime.setListenPort(listener.port)
        runtime.start(peers: peers)
        return RunningTorrent(runtime: runtime, listener: listener, storage: storage)
    }

    /// Closes every connection and the listening socket, and puts what was written on disk.
    public func stop() async {
        try? await runtime.stop().get()
        try? await listener.close()
        try? storage.sync()
        storage.closeAll()
    }
}
