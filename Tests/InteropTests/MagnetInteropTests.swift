import Foundation
import ShoalProcess
import Testing

/// Magnet links without a tracker (BEP 9) and peer exchange (BEP 11) between Shoal and libtorrent 2.0
/// on loopback: the peer address is given, the metadata comes from the peer.
@Suite(.enabled(if: RealClientKind.libtorrent.shouldRun))
struct MagnetInteropTests {
    @Test func shoalFetchesTheMetadataFromALibtorrentSeedAndCompletes() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let info = try await Interop.shoalInfo(fixture.torrent.path)
            #expect(!info.magnet.contains("tr="), "a link without trackers")
            let seed = LibtorrentClient(workDirectory: directory.appendingPathComponent("lt"))
            defer { seed.stop() }
            try await seed.startSeeding(torrent: fixture.torrent, dataDirectory: fixture.seedData, port: try LoopbackPorts.free())
            let download = directory.appendingPathComponent("download")
            let outcome = try await ExternalProcess.run(
                try Interop.shoalBinary(),
                ["get", info.magnet, "-o", download.path, "--port", "\(try LoopbackPorts.free())",
                 "--peer", "\(seed.peerAddress!)"],
                timeout: .seconds(60))
            #expect(outcome.succeeded, "\(outcome.summary)\n\(seed)")
            #expect(outcome.stdoutText.contains("Metadata: "), "\(outcome.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
            // The saved torrent is the original's info dictionary.
            let saved = try await Interop.shoalInfo(download.appendingPathComponent("tree.torrent").path)
            #expect(saved.infoHashV1 == info.infoHashV1)
            #expect(saved.files == info.files)
        }
    }

    @Test func libtorrentFetchesTheMetadataFromAShoalSeedAndCompletes() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(in: directory)
            defer { seed.stop() }
            let info = try await Interop.shoalInfo(fixture.torrent.path)
            let leecher = LibtorrentClient(workDirectory: directory.appendingPathComponent("lt"))
            defer { leecher.stop() }
            try await leecher.startLeeching(
                magnet: info.magnet, downloadDirectory: download, port: try LoopbackPorts.free(),
                connectTo: [.loopback(seedPort)])
            try await leecher.waitUntilComplete(timeout: .seconds(60))
            #expect(leecher.hasMetadata)
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// Transmission takes a magnet link with no tracker; the Shoal seed dials it (Transmission learns no
    /// loopback peer, PEERS.md) and serves it the metadata, then the data.
    @Test(.enabled(if: RealClientKind.transmission.shouldRun))
    func transmissionFetchesTheMetadataFromAShoalSeedAndCompletes() async throws {
        try RealClientKind.transmission.require()
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let info = try await Interop.shoalInfo(fixture.torrent.path)
            let ports = try LoopbackPorts.free(2)
            let download = directory.appendingPathComponent("download", isDirectory: true)
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let leecher = TransmissionClient(workDirectory: directory.appendingPathComponent("transmission"), lifetime: .seconds(120))
            defer { leecher.stop() }
            try await leecher.startLeeching(magnet: info.magnet, downloadDirectory: download, port: ports[1])
            let seed = try BackgroundProcess.shoal(
                ["seed", fixture.torrent.path, "--data", fixture.seedData.path, "--port", "\(ports[0])",
                 "--peer", "127.0.0.1:\(ports[1])"],
                name: "shoal-seed", logDirectory: directory, lifetime: .seconds(120))
            defer { seed.stop() }
            do {
                _ = try await leecher.waitUntilComplete(timeout: .seconds(60))
            } catch {
                throw RealClientError("\(error)\nshoal seed: \(seed)")
            }
            try assertSameFiles(
                source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download),
                allowMissingEmptyFiles: true)
        }
    }

    /// Shoal takes a magnet link with no tracker and a Transmission seed's address, fetches the metadata from
    /// Transmission and completes.
    @Test(.enabled(if: RealClientKind.transmission.shouldRun))
    func shoalFetchesTheMetadataFromATransmissionSeedAndCompletes() async throws {
        try RealClientKind.transmission.require()
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let info = try await Interop.shoalInfo(fixture.torrent.path)
            let seed = TransmissionClient(workDirectory: directory.appendingPathComponent("transmission"), lifetime: .seconds(120))
            defer { seed.stop() }
            let port = try LoopbackPorts.free()
            try await seed.startSeeding(
                torrent: fixture.torrent, dataDirectory: fixture.seedData, port: port, connectTo: [], timeout: .seconds(30))
            let download = directory.appendingPathComponent("download")
            let outcome = try await ExternalProcess.run(
                try Interop.shoalBinary(),
                ["get", info.magnet, "-o", download.path, "--port", "\(try LoopbackPorts.free())", "--peer", "127.0.0.1:\(port)"],
                timeout: .seconds(60))
            #expect(outcome.succeeded, "\(outcome.summary)\n\(seed)")
            #expect(outcome.stdoutText.contains("Metadata: "), "\(outcome.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// A Shoal seed dials two libtorrent leechers; through Shoal's PEX the first learns of the second and
    /// dials it. (The second runs without PEX, so that it cannot dial the first itself.)
    @Test func libtorrentLearnsAPeerFromShoalsPeerExchange() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let learner = LibtorrentClient(workDirectory: directory.appendingPathComponent("learner"), reportsPeers: true)
            defer { learner.stop() }
            let other = LibtorrentClient(workDirectory: directory.appendingPathComponent("other"), noPEX: true)
            defer { other.stop() }
            try await learner.startLeeching(
                torrent: fixture.torrent, downloadDirectory: directory.appendingPathComponent("learner-data"),
                port: try LoopbackPorts.free())
            try await other.startLeeching(
                torrent: fixture.torrent, downloadDirectory: directory.appendingPathComponent("other-data"),
                port: try LoopbackPorts.free())
            // Slow, so that both are still leechers when PEX speaks.
            let seed = try BackgroundProcess.shoal(
                ["seed", fixture.torrent.path, "--data", fixture.seedData.path, "--port", "\(try LoopbackPorts.free())",
                 "--max-upload", "300k", "--peer", "\(learner.peerAddress!)", "--peer", "\(other.peerAddress!)"],
                name: "shoal-seed", logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(90))
            defer { seed.stop() }
            let otherPort = other.peerAddress!.port
            let found = try await poll(
                "libtorrent to dial the peer Shoal told it of", timeout: .seconds(40),
                context: { "\(learner.peers())\n\(learner)\n\(seed)" }
            ) { () -> LibtorrentClient.ReportedPeer? in
                learner.peers().first { $0.port == Int(otherPort) && $0.learntByPEX }
            }
            #expect(found.outgoing)
        }
    }

    /// Shoal leeches from a libtorrent seed that dialled a second libtorrent peer; the seed's PEX tells
    /// Shoal of it, and Shoal dials it. (The second peer runs without PEX and dials nobody, so every
    /// connection it has was made to it: two of them means Shoal's as well as the seed's.)
    @Test func shoalLearnsAPeerFromLibtorrentsPeerExchange() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let other = LibtorrentClient(
                workDirectory: directory.appendingPathComponent("other"), reportsPeers: true, noPEX: true)
            defer { other.stop() }
            try await other.startLeeching(
                torrent: fixture.torrent, downloadDirectory: directory.appendingPathComponent("other-data"),
                port: try LoopbackPorts.free())
            let seed = LibtorrentClient(workDirectory: directory.appendingPathComponent("seed"), uploadLimit: 300_000)
            defer { seed.stop() }
            try await seed.startSeeding(
                torrent: fixture.torrent, dataDirectory: fixture.seedData, port: try LoopbackPorts.free(),
                connectTo: [other.peerAddress!])
            let shoal = try BackgroundProcess.shoal(
                ["get", fixture.torrent.path, "-o", directory.appendingPathComponent("shoal-data").path,
                 "--port", "\(try LoopbackPorts.free())", "--peer", "\(seed.peerAddress!)"],
                name: "shoal-get", logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(90))
            defer { shoal.stop() }
            let peers = try await poll(
                "Shoal to dial the peer libtorrent told it of", timeout: .seconds(40),
                context: { "\(other.peers())\n\(other)\n\(seed)\n\(shoal)" }
            ) { () -> [LibtorrentClient.ReportedPeer]? in
                let incoming = other.peers().filter { !$0.outgoing }
                return incoming.count >= 2 ? incoming : nil
            }
            #expect(peers.allSatisfy { $0.source & 32 != 0 }, "\(peers)")
        }
    }
}

/// qBittorrent (libtorrent 2.0 inside, driven over its Web API) takes a magnet link with no tracker and a
/// peer added by address: it fetches the metadata from a Shoal seed and completes.
@Suite(.enabled(if: RealClientKind.qbittorrent.shouldRun))
struct QBittorrentMagnetInteropTests {
    @Test func qBittorrentFetchesTheMetadataFromAShoalSeedAndCompletes() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(in: directory)
            defer { seed.stop() }
            let info = try await Interop.shoalInfo(fixture.torrent.path)
            let leecher = QBittorrentClient(workDirectory: directory.appendingPathComponent("qbittorrent"))
            defer { leecher.stop() }
            try await leecher.startLeeching(
                magnet: info.magnet, downloadDirectory: download, port: try LoopbackPorts.free(),
                connectTo: [.loopback(seedPort)])
            try await leecher.waitUntilComplete(timeout: .seconds(90))
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }
}
