import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalStorage
import ShoalSwarm
import ShoalTracker
import ShoalTrackerNIO
import Synchronization
import SystemPackage

/// `shoal demo`'s swarm: a tracker and, in this process, a seed and leechers, each a real ``RunningTorrent`` on
/// its own loopback port and folder, sharing one event loop group and one disk thread pool. The peers know
/// only the tracker (the torrent's `announce-list`, UDP and HTTP): they find each other through it.
struct LocalSwarm {
    let work: String
    let leechers: Int
    let size: Int64
    let pieceLength: Int?
    let seedUpload: Int64?
    let timeout: Double

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
        /// The tracker's URLs and what it counted at the end.
        var trackerURLs: [String]
        var trackerCounts: ScrapeCounts?

        var allIntact: Bool { mismatches.allSatisfy { $0 == nil } }
    }

    func run() async throws -> Result {
        Terminal.line("Making a sample of \(Terminal.size(size)) in \(work)")
        let seedDirectory = work + "/seed"
        let sample = try SampleContent.write(into: seedDirectory, totalSize: size, seed: 2026)
        var generator = SystemRandomNumberGenerator()
        let tracker: TrackerServer
        do {
            tracker = try await TrackerServer.start(
                configuration: .init(
                    httpPort: 0, udpPort: 0, bindAddresses: ["127.0.0.1"],
                    registry: .init(interval: Self.trackerInterval, seed: generator.next())))
        } catch {
            throw Terminal.fail("cannot start the tracker on 127.0.0.1: \(error)")
        }
        let trackerURLs = [
            "udp://127.0.0.1:\(tracker.udpAddresses.first?.port ?? 0)/announce",
            "http://127.0.0.1:\(tracker.httpAddresses.first?.port ?? 0)/announce",
        ]
        Terminal.line("Tracker on \(trackerURLs.joined(separator: " and ")): the peers know only it")
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

        var names = ["seed"]
        var peerIDs: [PeerID] = []
        var nodes: [RunningTorrent] = []
        var announcers: [SwarmTrackers] = []
        let start = Terminal.now()
        do {
            for index in 0...leechers {
                let isSeed = index == 0
                if !isSeed { names.append("leecher-\(index)") }
                let peerID = PeerID.shoal(using: &random)
                peerIDs.append(peerID)
                let configuration = TorrentStateMachine.Configuration(
                    infoHash: infoHash, peerID: peerID, geometry: layout.geometry,
                    pieceHashes: metainfo.info.pieceHashes, uploadRateLimit: isSeed ? seedUpload : nil,
                    seed: random.next())
                let machine = TorrentStateMachine(configuration: configuration, have: Bitfield(count: pieceCount, allSet: isSeed))
                let storage = PieceStorage(layout: layout, directory: isSeed ? seedDirectory : work + "/\(names[index])")
                if !isSeed { try storage.createEmptyFiles() }
                let name = names[index]
                let node = try await RunningTorrent.start(
                    machine: machine, storage: storage, group: group, threadPool: pool, host: "127.0.0.1", port: 0,
                    peers: []
                ) { report in
                    switch report {
                    case .completed:
                        outcomes.finishedAt.withLock { $0[index] = Terminal.now() - start }
                        outcomes.completed.withLock { _ = $0.insert(index) }
                    case .failed(let error): outcomes.failure.withLock { $0 = "\(name): \(error)" }
                    case .verified, .peerCount: break
                    }
                }
                nodes.append(node)
                // Only failures and warnings from the trackers are worth a line here.
                let announcer = SwarmTrackers.start(
                    tiers: metainfo.trackers, infoHash: infoHash, peerID: peerID, torrent: node, geometry: layout.geometry,
                    group: group, threadPool: pool, totals: .init(left: isSeed ? 0 : layout.totalLength), seed: random.next(),
                    say: { line in if !line.contains(" peer") { Terminal.line("\(name): \(line)") } })
                if let announcer { announcers.append(announcer) }
            }
            Terminal.line(
                "Seed on port \(nodes[0].port)"
                    + (seedUpload.map { ", uploading at most \(Terminal.size($0))/s" } ?? "")
                    + "; \(leechers) leechers on ports \(nodes.dropFirst().map { String($0.port) }.joined(separator: ", "))")
            try await watch(nodes: nodes, names: names, announcers: announcers, start: start, outcomes: outcomes)
        } catch {
            for (announcer, node) in zip(announcers, nodes) {
                await announcer.stop(try? await node.runtime.statistics().get(), geometry: layout.geometry)
            }
            for node in nodes { await node.stop() }
            await tracker.stop()
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }

        var statistics: [TorrentStatistics] = []
        for node in nodes { statistics.append(try await node.runtime.statistics().get()) }
        // Completions the watch did not pass on yet go to the trackers now; the tracker's counts are read once
        // it heard them all (or after two seconds).
        for index in outcomes.completed.withLock({ set in defer { set = [] }; return set }) where index < announcers.count {
            announcers[index].completed(statistics[index], geometry: layout.geometry)
        }
        let patience = Terminal.now() + 2
        while (tracker.counts(Bytes20(infoHash))?.completed ?? 0) < Int64(leechers), Terminal.now() < patience {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let trackerCounts = tracker.counts(Bytes20(infoHash))
        for (announcer, node) in zip(announcers, nodes) {
            await announcer.stop(try? await node.runtime.statistics().get(), geometry: layout.geometry)
        }
        for node in nodes { await node.stop() }
        await tracker.stop()
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
            trackerCounts: trackerCounts)
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
