import ShoalCore
import ShoalNIO
import ShoalSwarm
import Synchronization
import Testing

/// The hook through which local discovery (and later trackers and the DHT) hand peers to the runtime.
@Suite("Peer sources")
struct PeerSourcesTests {
    /// A source the test drives: it records its start and stop and delivers what it is told to.
    final class ScriptedSource: PeerSource {
        let name: String
        let allowedForPrivateTorrents: Bool
        private let state = Mutex<(started: Bool, stopped: Bool, deliver: (@Sendable ([PeerAddress], ConnectionPlanner.Source) -> Void)?)>(
            (false, false, nil))

        init(name: String, allowedForPrivateTorrents: Bool) {
            self.name = name
            self.allowedForPrivateTorrents = allowedForPrivateTorrents
        }

        func start(
            infoHash: Digest20, port: Int, deliver: @escaping @Sendable ([PeerAddress], ConnectionPlanner.Source) -> Void
        ) async throws {
            state.withLock {
                $0.started = true
                $0.deliver = deliver
            }
        }

        func stop() async { state.withLock { $0.stopped = true } }

        var started: Bool { state.withLock { $0.started } }
        var stopped: Bool { state.withLock { $0.stopped } }
        func find(_ peers: [PeerAddress]) { state.withLock { $0.deliver }?(peers, .lsd) }
    }

    @Test func aPrivateTorrentRunsOnlyTheSourcesItAllows() async {
        let local = ScriptedSource(name: "LSD", allowedForPrivateTorrents: false)
        let tracker = ScriptedSource(name: "tracker", allowedForPrivateTorrents: true)
        let sources = PeerSources([local, tracker])
        await sources.torrentIsPrivate()
        await sources.start(infoHash: Digest20(bytes: Array(repeating: 1, count: 20))!, port: 6881)
        #expect(!local.started && tracker.started)
        // Already running when the torrent turns out private (a magnet link): stopped then.
        let late = ScriptedSource(name: "LSD", allowedForPrivateTorrents: false)
        let others = PeerSources([late])
        await others.start(infoHash: Digest20(bytes: Array(repeating: 1, count: 20))!, port: 6881)
        #expect(late.started && !late.stopped)
        await others.torrentIsPrivate()
        #expect(late.stopped)
    }

    /// Peers found while no runtime runs (between the magnet phase and the download) wait for the next one.
    @Test func peersFoundBetweenRuntimesReachTheNextOne() async throws {
        let torrent = try TestTorrent.standard(seed: 90)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 91)) { await $0.shutdown() }
            seed.start()
            let source = ScriptedSource(name: "scripted", allowedForPrivateTorrents: true)
            let sources = PeerSources([source])
            await sources.start(infoHash: torrent.infoHash, port: 6881)
            source.find([seed.address])
            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, seed: 92)) { await $0.shutdown() }
            leecher.start()
            sources.route(to: leecher.runtime)
            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the peer found before the download ran was never dialled")
            await sources.stop()
            #expect(source.stopped)
        }
    }
}
