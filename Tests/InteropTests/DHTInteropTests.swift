import Foundation
import ShoalProcess
import Testing

/// Shoal's DHT on 127.0.0.1: `shoal dht` nodes form a DHT with each other and with libtorrent's DHT, and
/// peers announced on one side are found from the other. Every process is stopped by its PID; every wait is
/// bounded; no node is ever given a public bootstrap router.
@Suite("DHT on loopback: shoal dht and libtorrent", .serialized, .timeLimit(.minutes(5)))
struct DHTInteropTests {
    /// `shoal dht run` nodes on 127.0.0.1, the first alone (--no-bootstrap), the others joining through it.
    final class LoopbackDHT {
        let nodes: [BackgroundProcess]
        let ports: [Int]

        init(count: Int, logDirectory: URL) async throws {
            let ports = try LoopbackPorts.free(count)
            let shoal = try Interop.shoalBinary()
            var nodes: [BackgroundProcess] = []
            for (index, port) in ports.enumerated() {
                let join = index == 0 ? ["--no-bootstrap"] : ["--bootstrap", "127.0.0.1:\(ports[0])"]
                nodes.append(
                    try BackgroundProcess(
                        name: "shoal-dht-\(index)", executable: shoal,
                        arguments: ["dht", "run", "--port", "\(port)", "--bind", "127.0.0.1", "--report-interval", "1"]
                            + join,
                        logDirectory: logDirectory, lifetime: .seconds(240)))
                if index == 0 { try await Self.waitForLine(in: nodes[0], containing: "DHT node", timeout: .seconds(20)) }
            }
            self.nodes = nodes
            self.ports = ports
            // Joined: the first node knows every other one.
            try await Self.waitForLine(in: nodes[0], timeout: .seconds(30)) { line in
                Self.tableSize(line).map { $0 >= count - 1 } ?? false
            }
        }

        deinit { stop() }

        func stop() { for node in nodes { node.stop() } }

        func bootstrap(_ index: Int) -> String { "127.0.0.1:\(ports[index])" }

        /// The node count of a report line (`12 s: 5 nodes (IPv4 5, IPv6 0), ...`).
        static func tableSize(_ line: Substring) -> Int? {
            guard let range = line.range(of: " nodes (IPv4 ") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }

        static func waitForLine(
            in process: BackgroundProcess, containing text: String, timeout: Duration
        ) async throws {
            try await waitForLine(in: process, timeout: timeout) { $0.contains(text) }
        }

        static func waitForLine(
            in process: BackgroundProcess, timeout: Duration, _ matches: (Substring) -> Bool
        ) async throws {
            let deadline = ContinuousClock.now + timeout
            // The output is read once more after the deadline: on a loaded machine (the whole suite at once on
            // two cores) this task may not run again until well after it, while the line came in time.
            while true {
                if process.standardOutput.split(separator: "\n").contains(where: matches) { return }
                guard process.isRunning, ContinuousClock.now < deadline else { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw ProcessError(
                "\(process.name): no expected line within \(timeout)\n\(BackgroundProcess.tail(process.standardOutput))"
                    + "\n\(process.standardErrorTail().joined(separator: "\n"))")
        }
    }

    static var libtorrentScript: String {
        Interop.packageRoot.appendingPathComponent("Tests/InteropTests/Scripts/lt_dht.py").path
    }

    /// `lt_dht.py ARGUMENTS` under Debian's Python, for at most `seconds` (plus a margin).
    static func libtorrent(_ name: String, _ arguments: [String], directory: URL, seconds: Int) throws -> BackgroundProcess {
        try BackgroundProcess(
            name: name, executable: try Interop.require(.libtorrent),
            arguments: [libtorrentScript] + arguments + ["--max-seconds", "\(seconds)"], logDirectory: directory,
            lifetime: .seconds(Int64(seconds) + 30))
    }

    static func runShoal(_ arguments: [String]) async throws -> ProcessOutcome {
        try await ExternalProcess.run(try Interop.shoalBinary(), arguments, timeout: .seconds(60))
    }

    /// The command line alone: `shoal dht announce` stores a peer in a DHT of `shoal dht run` nodes and
    /// `shoal dht get-peers`, joining through another node, finds it; an unknown info-hash finds nothing.
    @Test func shoalCommandsAnnounceAndFindPeers() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let dht = try await LoopbackDHT(count: 5, logDirectory: directory)
            defer { dht.stop() }
            let infoHash = "0123456789abcdef0123456789abcdef01234567"
            let announce = try await Self.runShoal([
                "dht", "announce", infoHash, "--port", "51413", "--bind", "127.0.0.1", "--bootstrap", dht.bootstrap(1),
                "--timeout", "30",
            ])
            #expect(announce.succeeded, "\(announce.summary)")
            #expect(announce.stdoutText.contains("IPv4: announced to"))
            let found = try await Self.runShoal([
                "dht", "get-peers", infoHash, "--bind", "127.0.0.1", "--bootstrap", dht.bootstrap(3), "--timeout", "30",
            ])
            #expect(found.succeeded, "\(found.summary)")
            #expect(found.stdoutText.split(separator: "\n").contains("127.0.0.1:51413"))
            let nothing = try await Self.runShoal([
                "dht", "get-peers", "ffffffffffffffffffffffffffffffffffffffff", "--bind", "127.0.0.1", "--bootstrap",
                dht.bootstrap(2), "--timeout", "30",
            ])
            #expect(nothing.exitCode == 1)
            #expect(nothing.stderr.contains("no peers found"))
        }
    }

    /// libtorrent, joining through a Shoal node, finds the peer that `shoal dht announce` stored in the
    /// (Shoal and libtorrent) DHT.
    @Test(.enabled(if: Interop.shouldRun(tool: .libtorrent)))
    func libtorrentFindsAPeerShoalAnnounced() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let dht = try await LoopbackDHT(count: 4, logDirectory: directory)
            defer { dht.stop() }
            let ports = try LoopbackPorts.free(2)
            // A libtorrent node that only takes part, so that the DHT is mixed.
            let member = try Self.libtorrent(
                "libtorrent-member", ["--node", "--port", "\(ports[0])", "--bootstrap", dht.bootstrap(0)],
                directory: directory, seconds: 120)
            defer { member.stop() }
            // libtorrent keeps the node it bootstrapped from (a "router" to it) out of its table: 3 of the 4.
            try await LoopbackDHT.waitForLine(in: member, timeout: .seconds(40)) { line in
                guard let range = line.range(of: "\"dht_nodes\": ") else { return false }
                return Int(line[range.upperBound...].prefix { $0.isNumber }).map { $0 >= 3 } ?? false
            }

            let infoHash = "aabbccddeeff00112233445566778899aabbccdd"
            let announce = try await Self.runShoal([
                "dht", "announce", infoHash, "--port", "40123", "--bind", "127.0.0.1", "--bootstrap", dht.bootstrap(2),
                "--timeout", "30",
            ])
            #expect(announce.succeeded, "\(announce.summary)")

            let searcher = try Self.libtorrent(
                "libtorrent-searcher",
                ["--get-peers", infoHash, "--expect", "127.0.0.1:40123", "--port", "\(ports[1])", "--bootstrap",
                 dht.bootstrap(1)], directory: directory, seconds: 45)
            defer { searcher.stop() }
            _ = await searcher.waitForExit(timeout: .seconds(55))
            #expect(searcher.exitStatus == 0, "\(BackgroundProcess.tail(searcher.standardOutput))")
            #expect(searcher.standardOutput.contains("127.0.0.1:40123"))
        }
    }

    /// `shoal dht get-peers`, joining through a Shoal node, finds libtorrent's peer after libtorrent announced
    /// its torrent to the DHT (force_dht_announce).
    @Test(.enabled(if: Interop.shouldRun(tool: .libtorrent)))
    func shoalFindsAPeerLibtorrentAnnounced() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let dht = try await LoopbackDHT(count: 4, logDirectory: directory)
            defer { dht.stop() }
            let port = try LoopbackPorts.free()
            let infoHash = "00112233445566778899aabbccddeeff00112233"
            let announcer = try Self.libtorrent(
                "libtorrent-announcer", ["--announce", infoHash, "--port", "\(port)", "--bootstrap", dht.bootstrap(0)],
                directory: directory, seconds: 120)
            defer { announcer.stop() }
            // libtorrent says it announced (a DHT reply for the torrent).
            try await LoopbackDHT.waitForLine(in: announcer, containing: "\"event\": \"announced\"", timeout: .seconds(60))

            var found = false
            var last = ""
            for _ in 0..<6 where !found {
                let outcome = try await Self.runShoal([
                    "dht", "get-peers", infoHash, "--bind", "127.0.0.1", "--bootstrap", dht.bootstrap(3), "--timeout",
                    "20",
                ])
                last = outcome.summary
                found = outcome.stdoutText.split(separator: "\n").contains("127.0.0.1:\(port)")
                if !found { try await Task.sleep(for: .seconds(2)) }
            }
            #expect(found, "shoal dht get-peers did not find libtorrent's peer: \(last)")
        }
    }
}

/// Trackerless downloads: `shoal get` and `shoal seed` with `--dht-bootstrap` find each other (and libtorrent)
/// through a loopback DHT, with no --peer and no tracker.
@Suite("Trackerless on loopback: peers found through the DHT", .serialized, .timeLimit(.minutes(5)))
struct TrackerlessInteropTests {
    /// A 3 MiB file of random bytes and its torrent (no tracker).
    struct Sample {
        let data: URL
        let torrent: URL
        let file: URL

        init(in directory: URL) async throws {
            data = directory.appendingPathComponent("seed", isDirectory: true)
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            file = data.appendingPathComponent("sample.bin")
            var random = SystemRandomNumberGenerator()
            try Data((0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }).write(to: file)
            torrent = directory.appendingPathComponent("sample.torrent")
            try await Interop.shoalCreate(file, output: torrent, ["--piece-length", "32768"])
        }

        func matches(_ downloaded: URL) -> Bool {
            FileManager.default.contentsEqual(atPath: downloaded.path, andPath: file.path)
        }
    }

    static func shoal(name: String, _ arguments: [String], directory: URL) throws -> BackgroundProcess {
        try BackgroundProcess(
            name: name, executable: try Interop.shoalBinary(), arguments: arguments, logDirectory: directory,
            lifetime: .seconds(120))
    }

    /// From the .torrent, and from a bare magnet link (no tracker, no peer: the metadata comes from the seed
    /// found in the DHT).
    @Test(arguments: [false, true])
    func shoalGetFindsAShoalSeedInTheDHT(fromMagnet: Bool) async throws {
        try await Interop.withTemporaryDirectory { directory in
            let sample = try await Sample(in: directory)
            let source = fromMagnet ? try await Interop.shoalInfo(sample.torrent.path).magnet : sample.torrent.path
            #expect(!source.contains("tr=") && !source.contains("x.pe="))
            let dht = try await DHTInteropTests.LoopbackDHT(count: 3, logDirectory: directory)
            defer { dht.stop() }
            let ports = try LoopbackPorts.free(2)
            let seed = try Self.shoal(
                name: "shoal-seed",
                ["seed", sample.torrent.path, "--data", sample.data.path, "--port", "\(ports[0])", "--dht-bootstrap",
                 dht.bootstrap(0)], directory: directory)
            defer { seed.stop() }
            try await DHTInteropTests.LoopbackDHT.waitForLine(in: seed, containing: "DHT: ", timeout: .seconds(30))
            let download = directory.appendingPathComponent("download")
            let outcome = try await ExternalProcess.run(
                try Interop.shoalBinary(),
                ["get", source, "-o", download.path, "--port", "\(ports[1])", "--dht-bootstrap", dht.bootstrap(2)],
                timeout: .seconds(60))
            #expect(outcome.succeeded, "\(outcome.summary)")
            #expect(outcome.stdoutText.contains("DHT: 1 peers found"))
            if fromMagnet { #expect(outcome.stdoutText.contains("Metadata: "), "\(outcome.summary)") }
            #expect(sample.matches(download.appendingPathComponent("sample.bin")))
        }
    }

    /// libtorrent starts from a bare magnet link: it finds the Shoal seed in the DHT and fetches the metadata
    /// from it.
    @Test(.enabled(if: Interop.shouldRun(tool: .libtorrent)))
    func libtorrentFindsAShoalSeedInTheDHT() async throws {
        let python = try Interop.require(.libtorrent)
        try await Interop.withTemporaryDirectory { directory in
            let sample = try await Sample(in: directory)
            let magnet = try await Interop.shoalInfo(sample.torrent.path).magnet
            let dht = try await DHTInteropTests.LoopbackDHT(count: 3, logDirectory: directory)
            defer { dht.stop() }
            let ports = try LoopbackPorts.free(2)
            let seed = try Self.shoal(
                name: "shoal-seed",
                ["seed", sample.torrent.path, "--data", sample.data.path, "--port", "\(ports[0])", "--dht-bootstrap",
                 dht.bootstrap(0)], directory: directory)
            defer { seed.stop() }
            try await DHTInteropTests.LoopbackDHT.waitForLine(in: seed, containing: "DHT: ", timeout: .seconds(30))
            let download = directory.appendingPathComponent("lt-download")
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let leecher = try BackgroundProcess(
                name: "libtorrent-leecher", executable: python,
                arguments: [LibtorrentClient.script.path, "--magnet", magnet, "--save-path", download.path,
                            "--leech", "--port", "\(ports[1])", "--dht-bootstrap", dht.bootstrap(1), "--max-seconds", "60"],
                logDirectory: directory, lifetime: .seconds(80))
            defer { leecher.stop() }
            _ = await leecher.waitForExit(timeout: .seconds(75))
            #expect(leecher.exitStatus == 0, "\(BackgroundProcess.tail(leecher.standardOutput))")
            #expect(sample.matches(download.appendingPathComponent("sample.bin")))
        }
    }

    /// Shoal starts from a bare magnet link: it finds the libtorrent seed in the DHT and fetches the metadata
    /// from it.
    @Test(.enabled(if: Interop.shouldRun(tool: .libtorrent)))
    func shoalGetFindsALibtorrentSeedInTheDHT() async throws {
        let python = try Interop.require(.libtorrent)
        try await Interop.withTemporaryDirectory { directory in
            let sample = try await Sample(in: directory)
            let magnet = try await Interop.shoalInfo(sample.torrent.path).magnet
            let dht = try await DHTInteropTests.LoopbackDHT(count: 3, logDirectory: directory)
            defer { dht.stop() }
            let ports = try LoopbackPorts.free(2)
            let seed = try BackgroundProcess(
                name: "libtorrent-seed", executable: python,
                arguments: [LibtorrentClient.script.path, "--torrent", sample.torrent.path, "--save-path", sample.data.path,
                            "--seed", "--port", "\(ports[0])", "--dht-bootstrap", dht.bootstrap(0), "--max-seconds", "90"],
                logDirectory: directory, lifetime: .seconds(110))
            defer { seed.stop() }
            try await DHTInteropTests.LoopbackDHT.waitForLine(in: seed, containing: "\"is_seeding\": true", timeout: .seconds(30))
            let download = directory.appendingPathComponent("download")
            var outcome: ProcessOutcome?
            // libtorrent announces once its DHT has nodes: a get that finds nobody yet is tried again.
            for _ in 0..<5 where !(outcome?.succeeded ?? false) {
                outcome = try await ExternalProcess.run(
                    try Interop.shoalBinary(),
                    ["get", magnet, "-o", download.path, "--port", "\(ports[1])", "--dht-bootstrap", dht.bootstrap(2)],
                    timeout: .seconds(20))
            }
            #expect(outcome?.succeeded == true, "\(outcome?.summary ?? "")")
            #expect(FileManager.default.fileExists(atPath: download.appendingPathComponent("sample.bin.torrent").path))
            #expect(sample.matches(download.appendingPathComponent("sample.bin")))
        }
    }

    /// aria2 starts from a bare magnet link: its DHT (on loopback, PEERS.md) finds the Shoal seed, it fetches
    /// the metadata from it and completes.
    @Test(.enabled(if: RealClientKind.aria2.shouldRun))
    func aria2FindsAShoalSeedInTheDHTFromAMagnetLink() async throws {
        try RealClientKind.aria2.require()
        try await Interop.withTemporaryDirectory { directory in
            let sample = try await Sample(in: directory)
            let magnet = try await Interop.shoalInfo(sample.torrent.path).magnet
            let dht = try await DHTInteropTests.LoopbackDHT(count: 3, logDirectory: directory)
            defer { dht.stop() }
            let ports = try LoopbackPorts.free(2)
            let seed = try Self.shoal(
                name: "shoal-seed",
                ["seed", sample.torrent.path, "--data", sample.data.path, "--port", "\(ports[0])", "--dht-bootstrap",
                 dht.bootstrap(0)], directory: directory)
            defer { seed.stop() }
            try await DHTInteropTests.LoopbackDHT.waitForLine(in: seed, containing: "DHT: ", timeout: .seconds(30))
            let download = directory.appendingPathComponent("aria2-download")
            // aria2's loopback options with its IPv4 DHT on, entered through a node of the loopback DHT.
            let options = Aria2Client.loopbackOptions(port: ports[1]).filter { $0 != "--enable-dht=false" } + [
                "--enable-dht=true", "--dht-listen-port=\(ports[1])", "--dht-entry-point=\(dht.bootstrap(1))",
                "--dht-file-path=\(directory.appendingPathComponent("aria2-dht.dat").path)", "--seed-time=0",
                "--dir=\(download.path)", "--console-log-level=warn", magnet,
            ]
            let leecher = try BackgroundProcess(
                name: "aria2-leecher", executable: "aria2c", arguments: options, logDirectory: directory,
                lifetime: .seconds(100))
            defer { leecher.stop() }
            _ = await leecher.waitForExit(timeout: .seconds(90))
            #expect(leecher.exitStatus == 0, "\(BackgroundProcess.tail(leecher.standardOutput))\n\(seed)")
            #expect(sample.matches(download.appendingPathComponent("sample.bin")))
        }
    }
}
