import Foundation
import ShoalProcess
import Testing

/// Local service discovery (BEP 14) with real multicast, inside a network namespace the test makes (the
/// host's network never sees a datagram): a `shoal get MAGNET --lsd` with no peer given finds a
/// `shoal seed --lsd` through the multicast group, fetches the metadata from it and downloads everything.
@Suite(.enabled(if: MulticastNamespace.isAvailable, "needs root and ip(8) to make a network namespace"))
struct LocalDiscoveryInteropTests {
    @Test func aMagnetDownloadFindsItsSeedThroughMulticast() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let info = try await Interop.shoalInfo(fixture.torrent.path)
            let namespace = try await MulticastNamespace.make()
            let logs = directory.appendingPathComponent("logs")
            do {
                let seed = try namespace.shoal(
                    ["seed", fixture.torrent.path, "--data", fixture.seedData.path, "--port", "17101", "--lsd"],
                    name: "shoal-seed-lsd", logDirectory: logs)
                defer { seed.stop() }
                try await SwarmCommand.waitUntilListening(seed)
                let download = directory.appendingPathComponent("download")
                let get = try namespace.shoal(
                    ["get", info.magnet, "-o", download.path, "--port", "17102", "--lsd"], name: "shoal-get-lsd",
                    logDirectory: logs, lifetime: .seconds(90))
                defer { get.stop() }
                let exited = await get.waitForExit(timeout: .seconds(60))
                #expect(exited, "shoal get did not finish in 60 s:\n\(get)\n\(seed)")
                #expect(get.exitStatus == 0, "\(get)")
                #expect(get.standardOutput.contains("Metadata: "), "\(get)")
                try assertSameFiles(
                    source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
                #expect(FileManager.default.fileExists(atPath: download.appendingPathComponent("tree.torrent").path))
                seed.stop()
                get.stop()
            } catch {
                await namespace.remove()
                throw error
            }
            await namespace.remove()
        }
    }
}
