import ShoalCore
import ShoalDHT
import ShoalNIO
import ShoalSwarm

/// The DHT for one torrent of `shoal get` or `shoal seed` (BEP 5): a node on the torrent's port number (UDP),
/// announcing the torrent's v1 info-hash with the peer port and feeding every peer the lookups find to the
/// torrent. It announces at once, then every 15 minutes (libtorrent's interval), and every minute while a
/// download has found no peer yet.
struct TorrentDHT {
    static let announceInterval = Duration.seconds(15 * 60)
    static let retryInterval = Duration.seconds(60)

    let session: DHTSession
    let loop: Task<Void, Never>

    /// Starts the node and its announces; nil (with a message) when the node's socket cannot be opened.
    static func start(
        infoHash: Digest20, peerPort: Int, bootstrap: [String], torrent: TorrentRuntime,
        isComplete: @escaping @Sendable () async -> Bool
    ) async -> TorrentDHT? {
        let texts = bootstrap.isEmpty ? DHTCommand.publicRouters : bootstrap
        let session: DHTSession
        do {
            session = try await DHTSession.start(bootstrap: texts, port: peerPort)
        } catch {
            // DHTSession.start printed why.
            return nil
        }
        let status = await session.runtime.status()
        Terminal.line("DHT: node on \(DHTSession.describe(status)), announcing \(infoHash.hex)")
        let runtime = session.runtime
        let target = NodeID(infoHash)
        let loop = Task {
            while !Task.isCancelled {
                let results = await runtime.announce(target, port: UInt16(clamping: peerPort)) { peers in
                    torrent.addPeers(peers, source: .dht)
                }
                guard !Task.isCancelled else { return }
                let found = results.reduce(0) { $0 + $1.peers.count }
                let stored = results.reduce(0) { $0 + $1.announced }
                Terminal.line("DHT: \(found) peers found, announced to \(stored) nodes")
                let complete = await isComplete()
                let wait = found == 0 && !complete ? retryInterval : announceInterval
                try? await Task.sleep(for: wait)
            }
        }
        return TorrentDHT(session: session, loop: loop)
    }

    func stop() async {
        loop.cancel()
        await session.stop()
    }
}
