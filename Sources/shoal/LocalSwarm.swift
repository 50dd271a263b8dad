import NIOCore
import NIOPosix
import ShoalCore
import ShoalDHT
import ShoalNIO
import ShoalStorage
import ShoalSwarm
import ShoalTracker
import ShoalTrackerNIO
import ShoalWire
import Synchronization
import SystemPackage

/// `shoal demo`'s swarm: a tracker and, in this process, a seed and leechers, each a real ``RunningTorrent`` on
/// its own loopback port and folder, sharing one event loop group and one disk thread pool. The peers know
/// only the tracker (the torrent's `announce-list`, UDP and HTTP): they find each other through it (and then
/// through peer exchange). Trackerless, the peers know only a small DHT of three nodes on loopback: the seed
/// announces the torrent there, and each leecher starts from a bare magnet link (`xt` and `dn`), finds the
/// seed through the DHT, fetches the info dictionary from it (BEP 9), checks it and downloads.
struct LocalSwarm {
    let work: String
    let leechers: Int
    let size: Int64
    let pieceLength: Int?
    let seedUpload: Int64?
    let timeout: Double
    /// No tracker: a small DHT on loopback, and leechers that start from a bare magnet link.
    var trackerless = false

    /// What the demo saw, for the report.
    struct Result {
        var torrentName: String
        var totalLength: Int64
        var pieceCount: Int
        var pieceLength: Int
        var seedUpload: Int64?
        /// Node 0 is the seed.
        var names: [String]
        var peerIDs: [PeerID]
        /// Seconds from the leechers' start until each was complete.
        var finished: [Double]
        var statistics: [TorrentStatistics]
        /// Per leecher: nil when every byte equals the seed's, else what differs.
        var mismatches: [String?]
        /// The tracker's URLs and what it counted at the end (none trackerless).
        var trackerURLs: [String]
        var trackerCounts: ScrapeCounts?
        /// Trackerless: the DHT's nodes, the magnet link the leechers started from, and seconds from their
        /// start until each had the metadata.
        var dhtNodes: [String] = []
        var magnetLink: String?
        var metadataTimes: [Double] = []

        var allIntact: Bool { mismatches.allSatisfy { $0 == nil } }
    }

    func run() async throws -> Result {
        Terminal.line("Making a sample of \(Terminal.size(size)) in \(work)")
        let seedDirectory = work + "/seed"
        let sample = try SampleContent.write(into: seedDirectory, totalSize: size, seed: 2026)
        var generator = SystemRandomNumberGenerator()
        var tracker: TrackerServer?
        var trackerURLs: [String] = []
        var dht: [DHTSession] = []
        var dhtNodes: [String] = []
        if trackerless {
            dht = try await Self.startLoopbackDHT(nodes: 3)
            for session in dht { dhtNodes.append("127.0.0.1:\(await session.runtime.status().ports[.ipv4] ?? 0)") }
            Terminal.line("DHT of \(dht.count) nodes on \(dhtNodes.joined(separator: ", ")), no tracker: the peers know only the DHT")
        } else {
            do {
                let server = try await TrackerServer.start(
                    configuration: .init(
                        httpPort: 0, udpPort: 0, bindAddresses: ["127.0.0.1"],
                        registry: .init(interval: Self.trackerInterval, seed: generator.next())))
                tracker = server
                trackerURLs = [
                    "udp://127.0.0.1:\(server.udpAddresses.first?.port ?? 0)/announce",
                    "http://127.0.0.1:\(server.httpAddresses.first?.port ?? 0)/announce",
                ]
            } catch {
                throw Terminal.fail("cannot start the tracker on 127.0.0.1: \(error)")
            }
            Terminal.line("Tracker on \(trackerURLs.joined(separator: " and ")): the peers know only it")
        }
        var options = TorrentCreator.Options()
        options.pieceLength = pieceLength
        options.comment = "made by shoal demo"
        options.trackers = trackerURLs.map { [$0] }
        let metainfo = try TorrentCreator(options: options).create(from: sample)
        try WholeFile.writeAtomically(metainfo.encoded(), to: work + "/\(SampleContent.name).torrent")
        guard let infoHash = metainfo.infoHashV1 else { throw Terminal.fail("the sample torrent has no v1 info-hash") }
        let layout = FileLayout(metainfo.info)
        let pieceCount = layout.geometry.pieceCount
        Terminal.line(
            "Torrent \(infoHash): \(Terminal.size(layout.totalLength)) in \(pieceCount) pieces of "
                + "\(Terminal.size(Int64(layout.geometry.pieceLength)))")

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        var random = SplitMix64(seed: UInt64(truncatingIfNeeded: Terminal.now().bitPattern))
        let outcomes = Outcomes()

        let names = ["seed"] + (1...leechers).map { "leecher-\($0)" }
        // By node index (0 the seed): trackerless leechers start in the order their metadata arrives.
        var peerIDByIndex: [Int: PeerID] = [:]
        var nodeByIndex: [Int: RunningTorrent] = [:]
        var announcerByIndex: [Int: SwarmTrackers] = [:]
        var sources: [PeerSources] = []
        var metadataTimes: [Double] = []
        let link = MagnetLink(infoHashes: [.v1(infoHash)], displayName: metainfo.info.name)
        let start = Terminal.now()
        func startNode(_ index: Int, port: Int, peers: [PeerAddress]) async throws -> RunningTorrent {
            let isSeed = index == 0
            let peerID = PeerID.shoal(using: &random)
            peerIDByIndex[index] = peerID
            let configuration = TorrentStateMachine.Configuration(
                infoHash: infoHash, peerID: peerID, geometry: layout.geometry,
                pieceHashes: metainfo.info.pieceHashes, uploadRateLimit: isSeed ? seedUpload : nil,
                seed: random.next(), infoBytes: metainfo.infoBytes, peerExchange: true,
                clientName: ExtensionHandshake.shoalClientName)
            let machine = TorrentStateMachine(configuration: configuration, have: Bitfield(count: pieceCount, allSet: isSeed))
            let storage = PieceStorage(layout: layout, directory: isSeed ? seedDirectory : work + "/\(names[index])")
            if !isSeed { try storage.createEmptyFiles() }
            let name = names[index]
            let node = try await RunningTorrent.start(
                machine: machine, storage: storage, group: group, threadPool: pool, host: "127.0.0.1", port: port,
                peers: peers
            ) { report in
                switch report {
                case .completed:
                    outcomes.finishedAt.withLock { $0[index] = Terminal.now() - start }
                    outcomes.completed.withLock { _ = $0.insert(index) }
                case .failed(let error): outcomes.failure.withLock { $0 = "\(name): \(error)" }
                case .verified, .peerCount: break
                }
            }
            nodeByIndex[index] = node
            // Only failures and warnings from the trackers are worth a line here.
            let announcer = SwarmTrackers.start(
                tiers: metainfo.trackers, infoHash: infoHash, peerID: peerID, torrent: node, geometry: layout.geometry,
                group: group, threadPool: pool, totals: .init(left: isSeed ? 0 : layout.totalLength), seed: random.next(),
                say: { line in if !line.contains(" peer") { Terminal.line("\(name): \(line)") } })
            if let announcer { announcerByIndex[index] = announcer }
            return node
        }
        do {
            let seed = try await startNode(0, port: 0, peers: [])
            if trackerless {
                let seedSources = Self.dhtSources(name: "seed", nodes: dhtNodes)
                sources.append(seedSources)
                seedSources.route(to: seed.runtime)
                await seedSources.start(infoHash: infoHash, port: seed.port)
                Terminal.line(
                    "Seed on port \(seed.port)" + (seedUpload.map { ", uploading at most \(Terminal.size($0))/s" } ?? "")
                        + "; \(leechers) leechers start from \(link.uri)")
                // Each leecher downloads as soon as it has the metadata (on the port its fetch listened on,
                // where the others that met it in the DHT will dial it).
                var times: [Int: Double] = [:]
                try await fetchMetadata(link: link, names: names, dhtNodes: dhtNodes, start: start) { index, fetch, found, seconds in
                    sources.append(found)
                    guard fetch.metainfo.infoBytes == metainfo.infoBytes else {
                        throw Terminal.fail("\(names[index]): the fetched metadata is not the seed's")
                    }
                    times[index] = seconds
                    let node = try await startNode(index, port: fetch.port, peers: fetch.peers)
                    found.route(to: node.runtime)
                }
                metadataTimes = (1...leechers).map { times[$0] ?? .nan }
                Terminal.line(
                    "Every leecher has the metadata (after \(metadataTimes.map { Terminal.fixed($0, 2) }.joined(separator: ", ")) s); "
                        + "downloading on ports \((1...leechers).compactMap { nodeByIndex[$0].map { String($0.port) } }.joined(separator: ", "))")
            } else {
                for index in 1...leechers { _ = try await startNode(index, port: 0, peers: []) }
                Terminal.line(
                    "Seed on port \(seed.port)"
                        + (seedUpload.map { ", uploading at most \(Terminal.size($0))/s" } ?? "")
                        + "; \(leechers) leechers on ports \((1...leechers).compactMap { nodeByIndex[$0].map { String($0.port) } }.joined(separator: ", "))")
            }
            try await watch(
                nodes: (0...leechers).compactMap { nodeByIndex[$0] }, names: names,
                announcers: (0...leechers).compactMap { announcerByIndex[$0] }, start: start, outcomes: outcomes)
        } catch {
            for (index, announcer) in announcerByIndex {
                await announcer.stop(try? await nodeByIndex[index]?.runtime.statistics().get(), geometry: layout.geometry)
            }
            for source in sources { await source.stop() }
            for node in nodeByIndex.values { await node.stop() }
            await tracker?.stop()
            for session in dht { await session.stop() }
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }

        let nodes = (0...leechers).compactMap { nodeByIndex[$0] }
        let peerIDs = (0...leechers).compactMap { peerIDByIndex[$0] }
        let announcers = (0...leechers).compactMap { announcerByIndex[$0] }
        var statistics: [TorrentStatistics] = []
        for node in nodes { statistics.append(try await node.runtime.statistics().get()) }
        // Completions the watch did not pass on yet go to the trackers now; the tracker's counts are read once
        // it heard them all (or after two seconds).
        for index in outcomes.completed.withLock({ set in defer { set = [] }; return set }) where index < announcers.count {
            announcers[index].completed(statistics[index], geometry: layout.geometry)
        }
        let patience = Terminal.now() + 2
        while let tracker, (tracker.counts(Bytes20(infoHash))?.completed ?? 0) < Int64(leechers), Terminal.now() < patience {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let trackerCounts = tracker?.counts(Bytes20(infoHash))
        for (announcer, node) in zip(announcers, nodes) {
            await announcer.stop(try? await node.runtime.statistics().get(), geometry: layout.geometry)
        }
        for source in sources { await source.stop() }
        for node in nodes { await node.stop() }
        await tracker?.stop()
        for session in dht { await session.stop() }
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()

        let finished = outcomes.finishedAt.withLock { times in (1...leechers).map { times[$0] ?? .nan } }
        let mismatches = (1...leechers).map { index in
            Self.compare(layout: layout, directory: work + "/\(names[index])", with: seedDirectory)
        }
        return Result(
            torrentName: metainfo.info.name, totalLength: layout.totalLength, pieceCount: pieceCount,
            pieceLength: layout.geometry.pieceLength, seedUpload: seedUpload, names: names, peerIDs: peerIDs,
            finished: finished, statistics: statistics, mismatches: mismatches, trackerURLs: trackerURLs,
            trackerCounts: trackerCounts, dhtNodes: dhtNodes, magnetLink: trackerless ? link.uri : nil,
            metadataTimes: metadataTimes)
    }

    /// Three DHT nodes on 127.0.0.1: the first starts a DHT of its own, the others join through it.
    static func startLoopbackDHT(nodes count: Int) async throws -> [DHTSession] {
        var sessions: [DHTSession] = []
        do {
            for _ in 0..<count {
                let first = await sessions.first?.runtime.status().ports[.ipv4]
                sessions.append(
                    try await DHTSession.start(bootstrap: first.map { ["127.0.0.1:\($0)"] } ?? [], bind: ["127.0.0.1"], port: 0))
            }
        } catch {
            for session in sessions { await session.stop() }
            throw error
        }
        return sessions
    }

    /// A node's DHT peer source on loopback, looking again every 2 s while it finds no peer; its lines go to
    /// the terminal with the node's name, except the lookups that found nothing.
    static func dhtSources(name: String, nodes: [String]) -> PeerSources {
        let source = DHTPeerSource(bootstrap: nodes, bind: ["127.0.0.1"], retryInterval: .seconds(2)) { line in
            if !line.hasPrefix("DHT: 0 peers") { Terminal.line("\(name): \(line)") }
        }
        return PeerSources([source]) { Terminal.printError("\(name): \($0)") }
    }

    /// Every leecher's magnet phase at once: each on its own port on 127.0.0.1 with its own DHT node, finding
    /// peers through the DHT only, fetching and checking the info dictionary (saved as NAME.torrent in its
    /// folder). `each` hears of every fetch as it completes: the leecher's index, the fetch, its peer sources
    /// (still running) and the seconds since `start`.
    private func fetchMetadata(
        link: MagnetLink, names: [String], dhtNodes: [String], start: Double,
        each: (Int, MagnetFetch.Result, PeerSources, Double) async throws -> Void
    ) async throws {
        let deadline = start + timeout
        let work = work
        try await withThrowingTaskGroup(of: (Int, MagnetFetch.Result, PeerSources, Double).self) { group in
            for index in 1..<names.count {
                let name = names[index]
                group.addTask {
                    var options = SwarmRun.Options()
                    options.port = 0
                    let sources = Self.dhtSources(name: name, nodes: dhtNodes)
                    options.peerSources = sources
                    var fetch = MagnetFetch(link: link, directory: work + "/\(name)", options: options)
                    fetch.listenHost = "127.0.0.1"
                    fetch.stopsOnSignals = false
                    fetch.deadline = deadline
                    fetch.say = { line in if line.hasPrefix("Metadata: ") && line.contains("saved") { Terminal.line("\(name): \(line)") } }
                    do {
                        let result = try await fetch.run()
                        return (index, result, sources, Terminal.now() - start)
                    } catch {
                        await sources.stop()
                        throw Terminal.fail("\(name): \(error)")
                    }
                }
            }
            for try await (index, result, sources, seconds) in group { try await each(index, result, sources, seconds) }
        }
    }

    /// The demo tracker's announce interval: short, so that the peers hear of each other again within a
    /// demo's time.
    static let trackerInterval = 15

    /// Shows the leechers' progress until all are complete; throws on a failure or the timeout.
    private func watch(
        nodes: [RunningTorrent], names: [String], announcers: [SwarmTrackers], start: Double, outcomes: Outcomes
    ) async throws {
        let display = SwarmProgress(names: Array(names.dropFirst()))
        while true {
            if let message = outcomes.failure.withLock({ $0 }) { throw Terminal.fail(message) }
            var rows: [SwarmProgress.Row] = []
            for (index, node) in nodes.enumerated() {
                let statistics = try await node.runtime.statistics().get()
                if index < announcers.count {
                    let geometry = node.storage.layout.geometry
                    announcers[index].update(statistics, geometry: geometry)
                    if outcomes.completed.withLock({ $0.remove(index) != nil }) { announcers[index].completed(statistics, geometry: geometry) }
                }
                if index > 0 { rows.append(.init(statistics: statistics)) }
            }
            let elapsed = Terminal.now() - start
            let done = outcomes.finishedAt.withLock { $0.count } == leechers
            display.show(rows, elapsed: elapsed, final: done)
            if done { return }
            guard elapsed < timeout else {
                throw Terminal.fail("the swarm did not complete within \(Int(timeout)) s")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// What the nodes report from the event loop: when each leecher completed, and the first failure.
    final class Outcomes: Sendable {
        let finishedAt = Mutex<[Int: Double]>([:])
        /// Nodes that completed and whose trackers have not yet heard it.
        let completed = Mutex<Set<Int>>([])
        let failure = Mutex<String?>(nil)
    }

    /// Compares every file of the torrent in `directory` with the same file in `reference`, byte for byte.
    static func compare(layout: FileLayout, directory: String, with reference: String) -> String? {
        var left = [UInt8](repeating: 0, count: 1 << 20)
        var right = [UInt8](repeating: 0, count: 1 << 20)
        for file in layout.files where !file.isPadding {
            let relative = file.path.string
            do {
                let a = try FileDescriptor.open(FilePath(directory + "/" + relative), .readOnly)
                defer { try? a.close() }
                let b = try FileDescriptor.open(FilePath(reference + "/" + relative), .readOnly)
                defer { try? b.close() }
                var offset: Int64 = 0
                while true {
                    let leftCount = try left.withUnsafeMutableBytes { try a.read(fromAbsoluteOffset: offset, into: $0) }
                    let rightCount = try right.withUnsafeMutableBytes { try b.read(fromAbsoluteOffset: offset, into: $0) }
                    guard leftCount == rightCount, left[..<leftCount] == right[..<rightCount] else {
                        return "\(relative) differs from the seed's near byte \(offset)"
                    }
                    if leftCount == 0 { break }
                    offset += Int64(leftCount)
                }
                guard offset == file.length else { return "\(relative) has \(offset) bytes, not \(file.length)" }
            } catch {
                return "\(relative): \(error)"
            }
        }
        return nil
    }
}
