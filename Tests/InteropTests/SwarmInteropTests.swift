import Foundation
import ShoalProcess
import Testing

/// Shoal downloads a multi-file torrent from real clients and serves it to them, on loopback, every
/// byte compared with the source.
@Suite(.serialized)
struct SwarmInteropTests {
    /// `shoal seed` in the background, ready once it prints its listening port.
    private static func shoalSeed(
        _ fixture: RealClientHarness.Fixture, port: Int, dial peers: [Int] = [], in directory: URL
    ) async throws -> BackgroundProcess {
        let seed = try BackgroundProcess.shoal(
            ["seed", fixture.torrent.path, "--data", fixture.seedData.path, "--port", "\(port)"]
                + peers.flatMap { ["--peer", "127.0.0.1:\($0)"] },
            name: "shoal-seed", logDirectory: directory, lifetime: .seconds(120))
        try await poll("shoal seed to listen", timeout: .seconds(30), context: { "\(seed)" }) {
            seed.standardOutput.contains("Listening on port") ? true : nil
        }
        return seed
    }

    /// `shoal get` into DIRECTORY/download, dialling `peers`; it exits 0 once every piece is verified.
    private static func shoalGet(
        _ fixture: RealClientHarness.Fixture, dial peers: [Int], in directory: URL
    ) async throws -> URL {
        let download = directory.appendingPathComponent("download", isDirectory: true)
        let port = try LoopbackPorts.free()
        let outcome = try await Interop.shoal(
            ["get", fixture.torrent.path, "-o", download.path, "--port", "\(port)"]
                + peers.flatMap { ["--peer", "127.0.0.1:\($0)"] })
        guard outcome.succeeded, outcome.stdoutText.contains("Complete: all") else {
            throw RealClientError("shoal get failed: \(outcome.summary)")
        }
        return download
    }

    @Test func shoalToShoal() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let seedPort = try LoopbackPorts.free()
            let seed = try await Self.shoalSeed(fixture, port: seedPort, in: directory)
            defer { seed.stop() }
            let download = try await Self.shoalGet(fixture, dial: [seedPort], in: directory)
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// Shoal dials the real client's peer port and downloads from it.
    @Test(arguments: [RealClientKind.libtorrent, .aria2, .qbittorrent, .transmission])
    func shoalDownloadsFrom(_ kind: RealClientKind) async throws {
        try kind.require()
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let seedPort = try LoopbackPorts.free()
            let seed = kind.make(workDirectory: directory.appendingPathComponent("client"), lifetime: .seconds(120))
            defer { seed.stop() }
            try await seed.startSeeding(torrent: fixture.torrent, dataDirectory: fixture.seedData, port: seedPort)
            let download = try await Self.shoalGet(fixture, dial: [seedPort], in: directory)
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// The real client downloads from a Shoal seed: it dials Shoal where it can (libtorrent,
    /// qBittorrent); Shoal dials it where it cannot (aria2, Transmission).
    @Test(arguments: [RealClientKind.libtorrent, .aria2, .qbittorrent, .transmission])
    func shoalServes(_ kind: RealClientKind) async throws {
        try kind.require()
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let ports = try LoopbackPorts.free(2)
            let download = directory.appendingPathComponent("download", isDirectory: true)
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let leech = kind.make(workDirectory: directory.appendingPathComponent("client"), lifetime: .seconds(120))
            defer { leech.stop() }
            let seed: BackgroundProcess
            if kind.canDialPeers {
                seed = try await Self.shoalSeed(fixture, port: ports[0], in: directory)
                try await leech.startLeeching(
                    torrent: fixture.torrent, downloadDirectory: download, port: ports[1],
                    connectTo: [.loopback(ports[0])])
            } else {
                try await leech.startLeeching(torrent: fixture.torrent, downloadDirectory: download, port: ports[1])
                seed = try await Self.shoalSeed(fixture, port: ports[0], dial: [ports[1]], in: directory)
            }
            defer { seed.stop() }
            do {
                _ = try await leech.waitUntilComplete(timeout: .seconds(60))
            } catch {
                throw RealClientError("\(error)\nshoal seed: \(seed)")
            }
            try assertSameFiles(
                source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download),
                allowMissingEmptyFiles: !kind.createsEmptyFiles)
        }
    }
}
