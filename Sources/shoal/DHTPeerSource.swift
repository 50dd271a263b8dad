import ShoalCore
import ShoalDHT
import ShoalNIO
import ShoalSwarm
import Synchronization

/// The DHT as a peer source of `shoal get` and `shoal seed` (BEP 5): a node on the torrent's port number (UDP),
/// announcing the torrent's v1 info-hash with the peer port and handing every peer its lookups find to the
/// runtime of the moment (the magnet phase, then the download). It announces at once, then every 15 minutes
/// (libtorrent's interval), and every minute while no lookup has found a peer. Never for a private torrent
/// (BEP 27).
final class DHTPeerSource: PeerSource {
    static let announceInterval = Duration.seconds(15 * 60)

    let name = "DHT"
    let allowedForPrivateTorrents = false
    /// The nodes to join through; empty: the public routers.
    let bootstrap: [String]
    /// The addresses the node listens on; empty: 0.0.0.0 and ::.
    let bind: [String]
    /// How soon to look again after a lookup that found no peer.
    let retryInterval: Duration
    /// Where the node's lines go.
    let say: @Sendable (String) -> Void

    private struct Running {
        var session: DHTSession
        var loop: Task<Void, Never>
    }
    private let running = Mutex<Running?>(nil)

    init(
        bootstrap: [String], bind: [String] = [], retryInterval: Duration = .seconds(60),
        say: @escaping @Sendable (String) -> Void = { Terminal.line($0) }
    ) {
        self.bootstrap = bootstrap
        self.bind = bind
        self.retryInterval = retryInterval
        self.say = say
    }

    func start(
        infoHash: Digest20, port: Int, deliver: @escaping @Sendable ([PeerAddress], ConnectionPlanner.Source) -> Void
    ) async throws {
        let session = try await DHTSession.start(
            bootstrap: bootstrap.isEmpty ? DHTCommand.publicRouters : bootstrap, bind: bind, port: port)
        let status = await session.runtime.status()
        say("DHT: node on \(DHTSession.describe(status)), announcing \(infoHash.hex)")
        let runtime = session.runtime
        let target = NodeID(infoHash)
        let say = say
        let retryInterval = retryInterval
        let loop = Task {
            while !Task.isCancelled {
                let results = await runtime.announce(target, port: UInt16(clamping: port)) { peers in
                    deliver(peers, .dht)
                }
                guard !Task.isCancelled else { return }
                let found = results.reduce(0) { $0 + $1.peers.count }
                let stored = results.reduce(0) { $0 + $1.announced }
                say("DHT: \(found) peers found, announced to \(stored) nodes")
                try? await Task.sleep(for: found == 0 ? retryInterval : Self.announceInterval)
            }
        }
        let previous = running.withLock { running in
            defer { running = Running(session: session, loop: loop) }
            return running
        }
        if let previous {
            previous.loop.cancel()
            await previous.session.stop()
        }
    }

    func stop() async {
        guard let stopping = running.withLock({ running in
            defer { running = nil }
            return running
        }) else { return }
        stopping.loop.cancel()
        await stopping.session.stop()
    }
}
