import NIOCore
import NIOPosix
import ShoalCore
import ShoalSwarm

/// A torrent started from a magnet link, fetching its info dictionary on the network: its runtime and its
/// listening socket, started and stopped together (as ``RunningTorrent`` for the download that follows).
public final class RunningMagnet: Sendable {
    public let runtime: MagnetRuntime
    public let listener: PeerListener

    /// The port peers reach it on.
    public var port: Int { listener.port }

    private init(runtime: MagnetRuntime, listener: PeerListener) {
        self.runtime = runtime
        self.listener = listener
    }

    /// Listens on `host`:`port` (0: a free port), then dials `peers`. Reports come from the event loop and
    /// must not block.
    public static func start(
        machine: MagnetStateMachine, group: any EventLoopGroup, host: String = "::", port: Int, peers: [PeerAddress],
        report: @escaping @Sendable (MagnetRuntime.Report) -> Void
    ) async throws -> RunningMagnet {
        let runtime = MagnetRuntime(machine: machine, group: group, report: report)
        let listener = try await PeerListener.bind(host: host, port: port, runtime: runtime)
        runtime.setListenPort(listener.port)
        runtime.start(peers: peers)
        return RunningMagnet(runtime: runtime, listener: listener)
    }

    /// Closes every connection and the listening socket.
    public func stop() async {
        try? await runtime.stop().get()
        try? await listener.close()
    }
}
