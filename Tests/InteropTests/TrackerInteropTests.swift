import Foundation
import ShoalProcess
import Testing

/// Trackers with real programs on loopback (and, for Transmission, in a network namespace of the test's
/// own): Shoal's announces against opentracker, real clients announcing to `shoal tracker` and finding a
/// Shoal peer through it (and Shoal finding them), and a swarm of Shoal peers that know only a tracker.
@Suite(.serialized)
struct TrackerInteropTests {
    /// `shoal get` with no peer given: it must find them through the torrent's trackers.
    private static func get(_ fixture: RealClientHarness.Fixture, in directory: URL, name: String = "download") async throws -> URL {
        let download = directory.appendingPathComponent(name, isDirectory: true)
        let outcome = try await ExternalProcess.run(
            try Interop.shoalBinary(),
            ["get", fixture.torrent.path, "-o", download.path, "--port", "\(try LoopbackPorts.free())"], timeout: .seconds(60))
        guard outcome.succeeded, outcome.stdoutText.contains("Complete: all") else {
            throw RealClientError("shoal get through the tracker failed: \(outcome.summary)")
        }
        #expect(outcome.stdoutText.contains("Tracker "), "no tracker line: \(outcome.summary)")
        return download
    }

    // MARK: - Shoal's client against opentracker

    @Test(.enabled(if: OpenTrackerProcess.isInstalled || Interop.isRequired), arguments: ["udp", "http"])
    func shoalPeersFindEachOtherThroughOpentracker(scheme: String) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let port = try LoopbackPorts.free()
            let fixture = try await RealClientHarness.makeFixture(trackers: [OpenTrackerProcess.url(scheme, port: port)], in: directory)
            let infoHash = try #require(try await Interop.shoalInfo(fixture.torrent.path).infoHashV1)
            let tracker = try await OpenTrackerProcess.start(allowed: [infoHash], port: port, in: directory)
            defer { tracker.process.stop() }
            let seed = try await SwarmCommand.seed(fixture, port: try LoopbackPorts.free(), in: directory)
            defer { seed.stop() }
            try await poll("the seed to announce", timeout: .seconds(20), context: { "\(seed)" }) {
                seed.standardOutput.contains("Tracker \(scheme)://") ? true : nil
            }
            let download = try await Self.get(fixture, in: directory)
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
            // opentracker heard `completed` (and `stopped`, when get exited): a scrape says so.
            let scrape = try await Interop.shoal(["scrape", tracker.url(scheme), "--info-hash", infoHash])
            #expect(scrape.succeeded && scrape.stdoutText.contains("1 seeders, 0 leechers, 1 completed"), "\(scrape.summary)")
        }
    }

    // MARK: - Real clients and shoal tracker

    /// aria2 speaks UDP trackers only through its DHT socket ("udp is not supported yet" with the DHT off, as
    /// these tests keep it), so it is tested over HTTP.
    static let clientsAndSchemes: [(RealClientKind, String)] = [(.libtorrent, "udp"), (.libtorrent, "http"), (.aria2, "http")]

    /// The client announces to `shoal tracker`, learns the Shoal seed's address from it and downloads.
    @Test(arguments: TrackerInteropTests.clientsAndSchemes)
    func aRealClientFindsAShoalSeedThroughShoalTracker(kind: RealClientKind, scheme: String) async throws {
        try kind.require()
        try await Interop.withTemporaryDirectory { directory in
            let tracker = try await ShoalTrackerProcess.start(in: directory)
            defer { tracker.process.stop() }
            let fixture = try await RealClientHarness.makeFixture(trackers: [tracker.url(scheme)], in: directory)
            let seed = try await SwarmCommand.seed(fixture, port: try LoopbackPorts.free(), in: directory)
            defer { seed.stop() }
            let download = directory.appendingPathComponent("download", isDirectory: true)
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let leech = kind.make(workDirectory: directory.appendingPathComponent("client"), lifetime: .seconds(120))
            defer { leech.stop() }
            try await leech.startLeeching(torrent: fixture.torrent, downloadDirectory: download, port: try LoopbackPorts.free())
            do {
                try await leech.waitUntilComplete(timeout: .seconds(60))
            } catch {
                throw RealClientError("\(error)\nseed: \(seed)\ntracker: \(tracker.process)")
            }
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// The client seeds and announces to `shoal tracker`; `shoal get`, knowing only the tracker, finds it.
    @Test(arguments: TrackerInteropTests.clientsAndSchemes)
    func shoalFindsARealSeedThroughShoalTracker(kind: RealClientKind, scheme: String) async throws {
        try kind.require()
        try await Interop.withTemporaryDirectory { directory in
            let tracker = try await ShoalTrackerProcess.start(in: directory)
            defer { tracker.process.stop() }
            let fixture = try await RealClientHarness.makeFixture(trackers: [tracker.url(scheme)], in: directory)
            let seed = kind.make(workDirectory: directory.appendingPathComponent("client"), lifetime: .seconds(120))
            defer { seed.stop() }
            try await seed.startSeeding(torrent: fixture.torrent, dataDirectory: fixture.seedData, port: try LoopbackPorts.free())
            let download = try await Self.get(fixture, in: directory)
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// Transmission 3.00 drops 127.0.0.0/8 peers that trackers give it, so it runs on a host of its own, a
    /// network namespace with an address of its own; the tracker and the Shoal seed listen on the test's
    /// host. Transmission finds the Shoal seed through the tracker and downloads; then the seed leaves and a
    /// `shoal get` on a third host (Transmission keys peers by address and would take it for the seed it
    /// just finished with) finds Transmission, now seeding, through the tracker and downloads from it.
    @Test(.enabled(if: RealClientKind.transmission.shouldRun))
    func transmissionAndShoalFindEachOtherThroughShoalTracker() async throws {
        try RealClientKind.transmission.require()
        guard TestNetwork.isAvailable else {
            throw RealClientError("network namespaces need root and iproute2 (ip): Transmission ignores 127.0.0.0/8 peers from trackers")
        }
        try await Interop.withTemporaryDirectory { directory in
            let network = try TestNetwork(hosts: 2)
            defer { network.remove() }
            let tracker = try await ShoalTrackerProcess.start(host: network.hostAddress, in: directory)
            defer { tracker.process.stop() }
            let fixture = try await RealClientHarness.makeFixture(trackers: [tracker.httpURL], in: directory)
            let seed = try await SwarmCommand.seed(fixture, port: try LoopbackPorts.free(), in: directory)
            defer { seed.stop() }
            let download = directory.appendingPathComponent("transmission-download", isDirectory: true)
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let transmission = TransmissionClient(
                workDirectory: directory.appendingPathComponent("transmission"), lifetime: .seconds(150), network: network.hosts[0])
            defer { transmission.stop() }
            try await transmission.startLeeching(torrent: fixture.torrent, downloadDirectory: download, port: try LoopbackPorts.free())
            do {
                try await transmission.waitUntilComplete(timeout: .seconds(90))
            } catch {
                throw RealClientError("\(error)\nseed: \(seed)\ntracker: \(tracker.process)")
            }
            try assertSameFiles(
                source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download),
                allowMissingEmptyFiles: true)

            seed.stop()
            let shoalDownload = directory.appendingPathComponent("shoal-download", isDirectory: true)
            let command = network.hosts[1].command(
                [try Interop.shoalBinary(), "get", fixture.torrent.path, "-o", shoalDownload.path, "--port", "\(try LoopbackPorts.free())"])
            let outcome = try await ExternalProcess.run(command.executable, command.arguments, timeout: .seconds(90))
            guard outcome.succeeded, outcome.stdoutText.contains("Complete: all") else {
                throw RealClientError("shoal get (on its own host) found no Transmission seed through the tracker: \(outcome.summary)\n\(transmission)")
            }
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: shoalDownload))
        }
    }

    // MARK: - A Shoal swarm

    /// A seed whose upload is limited and four leechers: none is given a peer, all know only the tracker
    /// (UDP for some, HTTP for others). All complete, with pieces passed between leechers.
    @Test func aSwarmOfShoalPeersThatKnowOnlyTheTrackerCompletes() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let tracker = try await ShoalTrackerProcess.start(in: directory)
            defer { tracker.process.stop() }
            let fixture = try await RealClientHarness.makeFixture(trackers: [tracker.udpURL, tracker.httpURL], in: directory)
            let seed = try await SwarmCommand.seed(fixture, port: try LoopbackPorts.free(), maxUpload: "1M", in: directory)
            defer { seed.stop() }
            let downloads = (1...4).map { directory.appendingPathComponent("download-\($0)", isDirectory: true) }
            var leechers: [BackgroundProcess] = []
            defer { for leecher in leechers { leecher.stop() } }
            for (index, download) in downloads.enumerated() {
                leechers.append(
                    try BackgroundProcess.shoal(
                        ["get", fixture.torrent.path, "-o", download.path, "--port", "\(try LoopbackPorts.free())", "--seed"],
                        name: "shoal-leecher-\(index + 1)", logDirectory: directory.appendingPathComponent("logs"),
                        lifetime: .seconds(120)))
            }
            try await poll("every leecher to complete", timeout: .seconds(90), context: { leechers.map(\.description).joined(separator: "\n") }) {
                for leecher in leechers where !leecher.isRunning { throw RealClientError("\(leecher.name) ended early\n\(leecher)") }
                return leechers.allSatisfy { $0.standardOutput.contains("Complete: all") } ? true : nil
            }
            for download in downloads {
                try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
            }
            // The seed could give each leecher at most its limit: the leechers traded among themselves.
            for leecher in leechers { try SwarmCommand.send(SIGINT, to: leecher) }
            var uploaded: Int64 = 0
            for leecher in leechers {
                _ = try await SwarmCommand.exitStatus(of: leecher)
                uploaded += SwarmCommand.transferTotals(leecher.standardOutput)?.uploaded ?? 0
            }
            #expect(uploaded > Int64(fixture.totalSize) / 2, "the leechers uploaded only \(uploaded) B to each other")
            let scrape = try await Interop.shoal(["scrape", fixture.torrent.path])
            #expect(scrape.stdoutText.contains("4 completed"), "\(scrape.summary)")
        }
    }

    /// A magnet link whose only source of peers is its tracker (`tr=`): the magnet phase announces to it, finds
    /// the seed, fetches the metadata from it, and the download goes on through the same tracker.
    @Test(arguments: ["udp", "http"])
    func aMagnetLinkFindsItsSeedThroughItsTracker(scheme: String) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let tracker = try await ShoalTrackerProcess.start(in: directory)
            defer { tracker.process.stop() }
            let fixture = try await RealClientHarness.makeFixture(trackers: [tracker.url(scheme)], in: directory)
            let seed = try await SwarmCommand.seed(fixture, port: try LoopbackPorts.free(), in: directory)
            defer { seed.stop() }
            let magnet = try await Interop.shoalInfo(fixture.torrent.path).magnet
            #expect(magnet.contains("tr=") && !magnet.contains("x.pe="), "\(magnet)")
            let download = directory.appendingPathComponent("download", isDirectory: true)
            let outcome = try await ExternalProcess.run(
                try Interop.shoalBinary(), ["get", magnet, "-o", download.path, "--port", "\(try LoopbackPorts.free())"],
                timeout: .seconds(60))
            #expect(outcome.succeeded, "\(outcome.summary)")
            #expect(outcome.stdoutText.contains("Metadata: "), "\(outcome.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }
}
