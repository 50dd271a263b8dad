import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalSwarm
import Synchronization
import Testing

/// The magnet phase and peer exchange over real sockets on loopback.
@Suite("Magnet links and PEX over loopback")
struct MagnetRuntimeTests {
    /// What a magnet runtime reported.
    final class MagnetReports: Sendable {
        private let state = Mutex<(metadata: [UInt8]?, peers: [PeerAddress])>((nil, []))

        func record(_ report: MagnetRuntime.Report) {
            guard case .metadata(let bytes, let peers) = report else { return }
            state.withLock { $0 = (bytes, peers) }
        }

        var metadata: [UInt8]? { state.withLock { $0.metadata } }
        var peers: [PeerAddress] { state.withLock { $0.peers } }
    }

    @Test func aMagnetLinkFetchesTheMetadataFromASeedAndTheDownloadCompletes() async throws {
        let torrent = try TestTorrent.standard(seed: 60)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(
                try await RuntimePeer.seed(torrent, seed: 61) { $0.infoBytes = torrent.metainfo.infoBytes }
            ) { await $0.shutdown() }
            seed.start()

            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            cleanup.add { try? await group.shutdownGracefully() }
            var random = SplitMix64(seed: 62)
            let reports = MagnetReports()
            let magnet = try await RunningMagnet.start(
                machine: MagnetStateMachine(
                    configuration: .init(
                        infoHashes: torrent.metainfo.magnetLink.infoHashes, peerID: PeerID.shoal(using: &random))),
                group: group, host: "127.0.0.1", port: 0, peers: [seed.address]
            ) { reports.record($0) }
            cleanup.add { await magnet.stop() }

            let fetched = await eventually { reports.metadata != nil }
            #expect(fetched, "no metadata within 20 s")
            #expect(reports.metadata == torrent.metainfo.infoBytes)
            #expect(reports.peers == [seed.address])
            let metainfo = try Metainfo(infoDictionary: try #require(reports.metadata), magnetLink: torrent.metainfo.magnetLink)
            #expect(metainfo.infoHashV1 == torrent.infoHash)
            await magnet.stop()

            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, seed: 63)) { await $0.shutdown() }
            leecher.start(peers: reports.peers)
            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the download did not complete in 20 s")
            #expect(torrent.isDownloaded(in: leecher.directory))
        }
    }

    /// A leecher that knows only another leecher learns of the seed through PEX and connects to it.
    @Test func peerExchangeOverSocketsIntroducesTheSeed() async throws {
        let torrent = try TestTorrent.standard(seed: 70)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let pex: (inout TorrentStateMachine.Configuration) -> Void = {
                $0.peerExchange = true
                // Slow enough that nobody completes before PEX speaks (3 s after the extension handshake).
                $0.downloadRateLimit = 200_000
            }
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 71, configure: pex)) { await $0.shutdown() }
            seed.start()
            let first = cleanup.add(
                try await RuntimePeer.leecher(torrent, name: "first", listenOn: "127.0.0.1", seed: 72, configure: pex)
            ) { await $0.shutdown() }
            first.start(peers: [seed.address])
            let second = cleanup.add(
                try await RuntimePeer.leecher(torrent, name: "second", listenOn: "127.0.0.1", seed: 73, configure: pex)
            ) { await $0.shutdown() }
            second.start(peers: [first.address])

            let seedAddress = seed.address
            let met = await eventually(within: .seconds(15)) {
                let statistics = try? second.runtime.statistics().wait()
                return statistics?.peers.contains { $0.address == seedAddress } ?? false
            }
            #expect(met, "the second leecher never connected to the seed it could only learn of by PEX")
        }
    }
}
