import AsyncHTTPClient
import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalSwarm
import ShoalTracker
import ShoalTrackerNIO

/// The trackers of one running torrent (`shoal get`, `shoal seed`, `shoal demo`): announces `started`,
/// feeds the peers they give to the torrent, reports the torrent's totals, says `completed` and, at the
/// end, `stopped` (waiting at most a few seconds). Tracker messages go to `say`.
final class SwarmTrackers: Sendable {
    let announcer: TrackerAnnouncer
    private let httpClient: HTTPClient

    /// Starts announcing to `tiers` for a running torrent; nil when there is no usable tracker (unusable URLs
    /// are reported).
    static func start(
        tiers: [[String]], infoHash: Digest20, peerID: PeerID, torrent: RunningTorrent, geometry: PieceGeometry,
        group: any EventLoopGroup, threadPool: NIOThreadPool, totals: TrackerClient.Totals, seed: UInt64,
        say: @escaping @Sendable (String) -> Void
    ) -> SwarmTrackers? {
        let runtime = torrent.runtime
        return start(
            tiers: tiers, infoHash: infoHash, peerID: peerID, port: torrent.port, group: group, threadPool: threadPool,
            totals: totals, seed: seed, say: say
        ) { runtime.addPeers($0, source: .tracker) }
    }

    /// Starts announcing to `tiers` for a peer listening on `port` (the magnet phase too, before the torrent
    /// runs), handing the peers they give to `deliver`; nil when there is no usable tracker.
    static func start(
        tiers: [[String]], infoHash: Digest20, peerID: PeerID, port: Int, group: any EventLoopGroup,
        threadPool: NIOThreadPool, totals: TrackerClient.Totals, seed: UInt64, say: @escaping @Sendable (String) -> Void,
        deliver: @escaping @Sendable ([PeerAddress]) -> Void
    ) -> SwarmTrackers? {
        var random = SplitMix64(seed: seed)
        let configuration = TrackerClient.Configuration(
            infoHash: Bytes20(infoHash), peerID: Bytes20(peerID), port: UInt16(clamping: port),
            key: UInt32(truncatingIfNeeded: random.next()), seed: random.next())
        let machine = TrackerClient.StateMachine(configuration: configuration, tiers: tiers)
        for url in machine.invalidURLs { say("Tracker \(url) cannot be used: \(Self.reason(url))") }
        guard !machine.urls.isEmpty else { return nil }
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: .seconds(10), read: .seconds(30))
        let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: http)
        let announcer = TrackerAnnouncer(
            machine: machine, totals: totals, group: group, httpClient: client,
            threadPool: threadPool
        ) { event in
            switch event {
            case .peers(let peers): deliver(peers)
            case .report(let report): if let line = Self.describe(report) { say(line) }
            }
        }
        let trackers = SwarmTrackers(announcer: announcer, httpClient: client)
        announcer.start()
        return trackers
    }

    private init(announcer: TrackerAnnouncer, httpClient: HTTPClient) {
        self.announcer = announcer
        self.httpClient = httpClient
    }

    /// What announces report: bytes moved both ways, and the bytes of wanted pieces not yet verified
    /// (whole pieces; the last may be shorter, so it never counts more than the torrent).
    static func totals(_ statistics: TorrentStatistics, geometry: PieceGeometry) -> TrackerClient.Totals {
        let left = min(Int64(statistics.piecesRemaining) * Int64(geometry.pieceLength), geometry.totalLength)
        return TrackerClient.Totals(uploaded: statistics.uploaded, downloaded: statistics.downloaded, left: left)
    }

    func update(_ statistics: TorrentStatistics, geometry: PieceGeometry) {
        announcer.update(totals: Self.totals(statistics, geometry: geometry))
    }

    func completed(_ statistics: TorrentStatistics, geometry: PieceGeometry) {
        var totals = Self.totals(statistics, geometry: geometry)
        totals.left = 0
        announcer.completed(totals: totals)
    }

    /// Says `stopped` (bounded by the announce core's stop timeout) and closes the HTTP client.
    func stop(_ statistics: TorrentStatistics?, geometry: PieceGeometry) async {
        await stop(totals: statistics.map { Self.totals($0, geometry: geometry) } ?? .init(left: 0))
    }

    /// Says `stopped` with these totals and closes the HTTP client.
    func stop(totals: TrackerClient.Totals) async {
        await announcer.stop(totals: totals)
        try? await httpClient.shutdown()
    }

    static func describe(_ report: TrackerClient.Report) -> String? {
        switch report {
        case .announced(let url, _, let peers, let seeders, let leechers, let interval):
            let counts = seeders.map { seeders in " (\(seeders) seeders, \(leechers ?? 0) leechers)" } ?? ""
            return "Tracker \(url): \(peers) peer\(peers == 1 ? "" : "s")\(counts); next announce in \(Self.duration(interval))"
        case .warning(let url, let message):
            return "Tracker \(url) warns: \(message)"
        case .failed(let url, let reason, let retryAt):
            let retry = retryAt.map { "; retrying in \(Self.duration($0 - TrackerAnnouncer.now()))" } ?? ""
            return "Tracker \(url) failed: \(reason)\(retry)"
        case .stopped:
            return nil
        }
    }

    static func duration(_ interval: Interval) -> String {
        let seconds = max(Int(interval.seconds.rounded()), 0)
        return seconds < 120 ? "\(seconds) s" : "\(seconds / 60) min"
    }

    private static func reason(_ url: String) -> String {
        do {
            _ = try TrackerURL(parsing: url)
            return "unknown"
        } catch {
            return error.description
        }
    }
}
