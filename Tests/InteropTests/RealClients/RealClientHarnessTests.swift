#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalProcess
import Testing

/// Fixtures shared by the tests that run real clients.
enum RealClientHarness {
    /// The self-tests check the harness, not Shoal: they run only with `SHOAL_HARNESS_SELFTEST=1`.
    static var selfTestEnabled: Bool {
        ProcessInfo.processInfo.environment["SHOAL_HARNESS_SELFTEST"] == "1"
    }

    /// A small multi-file torrent: nested folders, an empty file, sizes that are not multiples of
    /// the 32 KiB pieces (so pieces span files).
    static let tree = FileTree([
        ("a/b/big.bin", 2_500_001), ("a/b/c/d/deep.bin", 40_000), ("a/empty", 0), ("c/mid.bin", 700_001),
        ("small.txt", 12_345), ("z.bin", 65_536),
    ])

    /// A torrent and the data a seed serves.
    struct Fixture: Sendable {
        /// The .torrent file.
        var torrent: URL
        /// The torrent's name: its top folder.
        var name: String
        /// The directory that holds the top folder: a seed's `dataDirectory`.
        var seedData: URL
        var totalSize: Int

        /// The torrent's content below a client's data or download directory.
        func content(in directory: URL) -> URL { directory.appendingPathComponent(name) }
    }

    /// Writes `tree` into DIRECTORY/seed-data/NAME and makes DIRECTORY/NAME.torrent with `shoal create`
    /// (announcing to `trackers`, each a tier of its own).
    static func makeFixture(
        _ tree: FileTree = tree, name: String = "tree", trackers: [String] = [], in directory: URL
    ) async throws -> Fixture {
        let seedData = directory.appendingPathComponent("seed-data", isDirectory: true)
        try tree.write(to: seedData.appendingPathComponent(name))
        let torrent = directory.appendingPathComponent("\(name).torrent")
        try await Interop.shoalCreate(
            seedData.appendingPathComponent(name), output: torrent,
            ["--piece-length", "32768"] + trackers.flatMap { ["--tracker", $0] })
        return Fixture(torrent: torrent, name: name, seedData: seedData, totalSize: tree.totalSize)
    }

    /// A transfer from a `seedKind` seed to a `leechKind` leecher, checked byte for byte. The side
    /// that can dial does: the leecher when it can (`leecherDials`), else the seed dials the leecher.
    /// Returns the seconds the seed took to check its data and the leecher took to complete.
    @discardableResult
    static func transfer(
        from seedKind: RealClientKind, to leechKind: RealClientKind, leecherDials: Bool,
        timeout: Duration = .seconds(40)
    ) async throws -> (seedReady: Double, transfer: Double) {
        try seedKind.require()
        try leechKind.require()
        return try await Interop.withTemporaryDirectory { directory in
            let fixture = try await makeFixture(in: directory)
            let ports = try LoopbackPorts.free(2)
            let seed = seedKind.make(workDirectory: directory.appendingPathComponent("seed-client"), lifetime: .seconds(120))
            let leech = leechKind.make(
                workDirectory: directory.appendingPathComponent("leech-client"), lifetime: .seconds(120))
            defer {
                seed.stop()
                leech.stop()
            }
            let download = directory.appendingPathComponent("download", isDirectory: true)
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)

            let clock = ContinuousClock()
            let started = clock.now
            let seedReady: Duration
            let leechStarted: ContinuousClock.Instant
            if leecherDials {
                try await seed.startSeeding(torrent: fixture.torrent, dataDirectory: fixture.seedData, port: ports[0])
                seedReady = clock.now - started
                leechStarted = clock.now
                try await leech.startLeeching(
                    torrent: fixture.torrent, downloadDirectory: download, port: ports[1],
                    connectTo: [.loopback(ports[0])])
            } else {
                // The leecher listens first; the seed dials it once it has checked its data.
                leechStarted = clock.now
                try await leech.startLeeching(torrent: fixture.torrent, downloadDirectory: download, port: ports[1])
                let seedStarted = clock.now
                try await seed.startSeeding(
                    torrent: fixture.torrent, dataDirectory: fixture.seedData, port: ports[0],
                    connectTo: [.loopback(ports[1])])
                seedReady = clock.now - seedStarted
            }
            let final: TransferStatus
            do {
                final = try await leech.waitUntilComplete(timeout: timeout)
            } catch {
                throw RealClientError("\(error)\nseed: \(seed)")
            }
            let transfer = clock.now - leechStarted
            let total = clock.now - started
            do {
                try assertSameFiles(
                    source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download),
                    allowMissingEmptyFiles: !leechKind.createsEmptyFiles)
            } catch {
                throw RealClientError("\(error)\nleecher: \(leech)\nseed: \(seed)")
            }
            #expect(final.bytesDone == Int64(fixture.totalSize), "\(leechKind) reports \(final)")
            #expect(final.progress == 1, "\(leechKind) reports \(final)")
            // The seed's own count of what it sent (libtorrent prints it every 0.5 s, qBittorrent
            // refreshes it every 1.5 s).
            let seedStatus = try await poll("\(seedKind) to report its upload", timeout: .seconds(5)) {
                let status = try await seed.status()
                return status.uploaded >= Int64(fixture.totalSize) ? status : nil
            }
            #expect(seedStatus.isComplete, "\(seedKind) reports \(seedStatus)")
            let seconds = (seedReady: seconds(seedReady), transfer: seconds(transfer))
            print(
                "RealClientHarness: \(seedKind) -> \(leechKind) (\(leecherDials ? "leecher" : "seed") dials): "
                    + "seed ready in \(String(format: "%.2f", seconds.seedReady)) s, "
                    + "\(fixture.totalSize) B downloaded in \(String(format: "%.2f", seconds.transfer)) s, "
                    + "\(String(format: "%.2f", Self.seconds(total))) s from the first start to completion")
            return seconds
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The harness itself, paired with libtorrent (whose script we control): libtorrent downloads from
/// each other client, and each other client downloads from libtorrent. They check the harness, not
/// Shoal, and cost CI time: they run only with `SHOAL_HARNESS_SELFTEST=1`. Serialized, so that the
/// timings they print are each transfer's own.
@Suite(.serialized, .enabled(if: RealClientHarness.selfTestEnabled, "set SHOAL_HARNESS_SELFTEST=1 to run"))
struct RealClientHarnessTests {
    /// libtorrent dials the other client's peer port and downloads from it.
    @Test(arguments: [RealClientKind.aria2, .transmission, .qbittorrent])
    func libtorrentLeechesFrom(_ seed: RealClientKind) async throws {
        try await RealClientHarness.transfer(from: seed, to: .libtorrent, leecherDials: true)
    }

    /// The other client downloads from a libtorrent seed that dials it (`connect_peer`).
    @Test(arguments: [RealClientKind.aria2, .transmission, .qbittorrent])
    func leechesFromLibtorrent(_ leech: RealClientKind) async throws {
        try await RealClientHarness.transfer(from: .libtorrent, to: leech, leecherDials: false)
    }

    /// qBittorrent dials the libtorrent seed itself (`/api/v2/torrents/addPeers`).
    @Test func qbittorrentDialsLibtorrent() async throws {
        try await RealClientHarness.transfer(from: .libtorrent, to: .qbittorrent, leecherDials: true)
    }

    /// The script against itself.
    @Test func libtorrentToLibtorrent() async throws {
        try await RealClientHarness.transfer(from: .libtorrent, to: .libtorrent, leecherDials: true)
    }

    /// aria2 and Transmission cannot dial an address: the harness says so instead of ignoring it,
    /// and starts nothing.
    @Test(arguments: [RealClientKind.aria2, .transmission])
    func clientsThatCannotDialSaySo(_ kind: RealClientKind) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let client = kind.make(workDirectory: directory)
            await #expect(throws: RealClientError.self) {
                try await client.startLeeching(
                    torrent: directory.appendingPathComponent("none.torrent"), downloadDirectory: directory,
                    port: try LoopbackPorts.free(), connectTo: [.loopback(1)])
            }
            #expect(client.process == nil)
        }
    }

    /// A seed whose data is missing fails to start instead of waiting for peers.
    @Test func libtorrentSeedWithoutDataFails() async throws {
        try RealClientKind.libtorrent.require()
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let empty = directory.appendingPathComponent("empty", isDirectory: true)
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            let seed = RealClientKind.libtorrent.make(workDirectory: directory.appendingPathComponent("client"))
            defer { seed.stop() }
            await #expect(throws: RealClientError.self) {
                try await seed.startSeeding(
                    torrent: fixture.torrent, dataDirectory: empty, port: try LoopbackPorts.free(),
                    timeout: .seconds(15))
            }
        }
    }

    /// `stop()` ends a program that ignores SIGTERM (and its children, which inherit that) with
    /// SIGKILL after the grace period, and leaves nothing of its process group behind.
    @Test func stopKillsWhatIgnoresSigterm() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let process = try BackgroundProcess(
                name: "stubborn", executable: "/bin/sh",
                arguments: ["-c", "trap '' TERM; sleep 60 & while :; do sleep 0.05; done"],
                logDirectory: directory, lifetime: .seconds(30), grace: .milliseconds(500))
            try await Task.sleep(for: .milliseconds(200))
            #expect(process.isRunning)
            let clock = ContinuousClock()
            let started = clock.now
            process.stop()
            let took = clock.now - started
            #expect(!process.isRunning)
            #expect(took >= .milliseconds(450) && took < .seconds(5), "stop took \(took)")
            // Zombies may wait for init to reap them; only live members count.
            let left = try await poll("the group to end", timeout: .seconds(2)) {
                let members = BackgroundProcess.liveMembers(ofGroup: process.pid)
                return members.isEmpty ? members : nil
            }
            #expect(left.isEmpty)
            process.stop()  // Idempotent.
        }
    }

    /// A well-behaved program ends at SIGTERM, at once; its output stays readable.
    @Test func stopEndsAProgramAtSigterm() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let process = try BackgroundProcess(
                name: "sleeper", executable: "/bin/sh", arguments: ["-c", "echo started; exec sleep 60"],
                logDirectory: directory, lifetime: .seconds(30))
            _ = try await poll("the sleeper to start", timeout: .seconds(5)) {
                process.standardOutput.contains("started") ? true : nil
            }
            let clock = ContinuousClock()
            let started = clock.now
            process.stop()
            #expect(clock.now - started < .seconds(1))
            #expect(!process.isRunning)
            #expect(process.standardOutput == "started\n")
            #expect(process.ending != nil)
        }
    }
}
