import ArgumentParser
import Dispatch
import Glibc
import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalStorage
import ShoalSwarm
import ShoalWire

/// What `shoal get` and `shoal seed` share: read the torrent, find what is already on disk (resume data,
/// else a check), run the torrent on the network until it is complete (and then, when seeding, until
/// interrupted), saving resume data as it goes and when stopped.
struct SwarmRun {
    struct Options {
        var port = 6881
        var peers: [PeerAddress] = []
        /// Trackers given on the command line, each a tier of its own after the torrent's (BEP 12).
        var trackers: [String] = []
        var maxUpload: Int64?
        var maxDownload: Int64?
        var sequential = false
        /// One priority per file of the torrent; nil: every file normal.
        var filePriorities: [PiecePriority]?
        /// Hash everything on disk, ignoring resume data.
        var forceCheck = false
        /// Peer exchange (BEP 11) with peers that offer it; never for a private torrent.
        var peerExchange = true
        /// Where more peers come from (local discovery; trackers and the DHT plug in here): routed to the
        /// download once it runs, stopped when it ends.
        var peerSources: PeerSources?
    }

    /// How often resume data is saved while running.
    static let resumeInterval = 30.0
    /// Under this many peers a downloading torrent asks its trackers for more (at most once a minute).
    static let fewPeers = 5

    let metainfo: Metainfo
    let directory: String
    let options: Options
    let layout: FileLayout

    init(metainfo: Metainfo, directory: String, options: Options) {
        self.metainfo = metainfo
        self.directory = directory
        self.options = options
        self.layout = FileLayout(metainfo.info)
    }

    var infoHash: InfoHash { metainfo.infoHash }

    /// The resume file: hidden beside the torrent's data, named by its info-hash.
    var resumePath: String {
        (directory.hasSuffix("/") ? directory : directory + "/") + ".\(infoHash.hex).shoal-resume"
    }

    var piecePriorities: [PiecePriority]? {
        options.filePriorities.map { layout.piecePriorities(files: $0) }
    }

    // MARK: - What is on disk

    /// The verified pieces on disk: trusted from resume data where the files are unchanged, hashed
    /// (on every core) where they changed or when there is no usable resume data.
    func startingPieces() throws -> Bitfield {
        if !options.forceCheck, let resume = loadResume() {
            let validation = resume.validate(against: layout, directory: directory)
            var have = validation.trusted
            if !validation.needsRecheck.isEmpty {
                let changed = validation.changedFiles.count
                Terminal.line("Resume data: \(changed) file\(changed == 1 ? "" : "s") changed since it was saved; checking")
                let rechecked = try check(pieces: validation.needsRecheck)
                for piece in rechecked.setIndices { _ = have.set(piece) }
            }
            Terminal.line("Resume data: \(validation.trusted.setCount) pieces trusted without reading")
            return have
        }
        return try check(pieces: nil)
    }

    /// The saved resume data; nil when there is none (quietly) or it cannot be used (with a warning).
    private func loadResume() -> ResumeData? {
        do {
            return try ResumeData.load(from: resumePath, infoHash: infoHash, layout: layout)
        } catch {
            if case .unreadable(let reason) = error.code, reason.code == .fileNotFound { return nil }
            Terminal.printError("ignoring \(resumePath): \(error); checking the data")
            return nil
        }
    }

    /// Hashes `pieces` (nil: all) of the data on disk, with a progress bar on a terminal.
    private func check(pieces: Bitfield?) throws -> Bitfield {
        let total = layout.totalLength
        let bar = Terminal.stderrIsTerminal ? ProgressBar(label: "Checking") : nil
        defer { bar?.finish() }
        var progress: (@Sendable (Int64) -> Void)? = nil
        if let bar {
            progress = { done in bar.update(done: done, total: total) }
        }
        do {
            return try Recheck().verify(
                layout: layout, pieceHashes: metainfo.info.pieceHashes, directory: directory, pieces: pieces,
                progress: progress)
        } catch {
            throw Terminal.fail(error.description)
        }
    }

    // MARK: - Running

    /// What the run loop waits for.
    private enum Event: Sendable {
        case report(TorrentRuntime.Report)
        case tick
        case interrupted(Int32)
    }

    /// Runs until complete; with `keepSeeding`, until interrupted. Ctrl-C (or SIGTERM) stops cleanly at
    /// any time and keeps the resume data; interrupted before completion, the exit status is 130.
    func run(have: Bitfield, keepSeeding: Bool) async throws {
        guard let v1 = metainfo.infoHashV1 else { throw Terminal.fail("only v1 and hybrid torrents can be downloaded yet") }
        var random = SplitMix64(seed: UInt64(truncatingIfNeeded: Terminal.now().bitPattern))
        var picker = PiecePicker.Configuration()
        picker.sequential = options.sequential
        let peerID = PeerID.shoal(using: &random)
        let configuration = TorrentStateMachine.Configuration(
            infoHash: v1, peerID: peerID, geometry: layout.geometry,
            pieceHashes: metainfo.info.pieceHashes, picker: picker, uploadRateLimit: options.maxUpload,
            downloadRateLimit: options.maxDownload, piecePriorities: piecePriorities, seed: random.next(),
            infoBytes: metainfo.infoBytes, isPrivate: metainfo.info.isPrivate, peerExchange: options.peerExchange && !metainfo.info.isPrivate,
            clientName: ExtensionHandshake.shoalClientName)
        let machine = TorrentStateMachine(configuration: configuration, have: have)
        let storage = PieceStorage(layout: layout, directory: directory)
        do { try Directories.make(directory) } catch {
            throw Terminal.fail("cannot make the directory \(directory): \(error)")
        }
        if !machine.isFinished {
            do { try storage.createEmptyFiles() } catch { throw Terminal.fail(error.description) }
        }

        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let signals = Self.watchSignals { continuation.yield(.interrupted($0)) }
        defer { for source in signals { source.cancel() } }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let torrent: RunningTorrent
        do {
            torrent = try await RunningTorrent.start(
                machine: machine, storage: storage, group: group, threadPool: pool, port: options.port,
                peers: options.peers
            ) { report in
                // Only completion and failure matter here (progress comes from the statistics at each tick):
                // waking the task for each verified piece cost the event loop ~4,500 instructions a piece.
                switch report {
                case .completed, .failed: continuation.yield(.report(report))
                case .verified, .peerCount: break
                }
            }
        } catch {
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw Terminal.fail("cannot listen on port \(options.port): \(error)")
        }
        Terminal.line("Listening on port \(torrent.port); \(have.setCount) of \(have.count) pieces verified")
        if let sources = options.peerSources {
            if metainfo.info.isPrivate { await sources.torrentIsPrivate() }
            sources.route(to: torrent.runtime)
            await sources.start(infoHash: v1, port: torrent.port)
        }
        let geometry = layout.geometry
        var lastStatistics = try? await torrent.runtime.statistics().get()
        let trackers = SwarmTrackers.start(
            tiers: metainfo.trackers + options.trackers.map { [$0] }, infoHash: v1, peerID: peerID, torrent: torrent,
            geometry: geometry, group: group, threadPool: pool,
            totals: lastStatistics.map { SwarmTrackers.totals($0, geometry: geometry) } ?? .init(left: machine.isFinished ? 0 : geometry.totalLength),
            seed: random.next(), say: { Terminal.line($0) })
        var lastPeerRequest = Terminal.now()
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Terminal.stderrIsTerminal ? 250 : 1000))
                continuation.yield(.tick)
            }
        }

        let progress = Progress(totalBytes: layout.totalLength)
        var failure: StorageError?
        var interrupted: Int32?
        var finished = machine.isFinished
        var lastSave = Terminal.now()
        if finished { Terminal.line(keepSeeding ? "Complete: seeding" : "Complete: nothing to download") }
        if !finished || keepSeeding {
            loop: for await event in events {
                switch event {
                case .report(.completed):
                    finished = true
                    progress.finish()
                    if let statistics = try? await torrent.runtime.statistics().get() {
                        lastStatistics = statistics
                        trackers?.completed(statistics, geometry: geometry)
                    }
                    Terminal.line("Complete: all \(machine.isComplete || piecePriorities == nil ? "\(have.count) pieces" : "wanted pieces") verified")
                    do { try await saveResume(torrent, pool: pool) } catch {
                        failure = error
                        break loop
                    }
                    lastSave = Terminal.now()
                    if !keepSeeding { break loop }
                    Terminal.line("Seeding until interrupted (Ctrl-C)")
                case .report(.failed(let error)):
                    failure = error
                    break loop
                case .report(.verified), .report(.peerCount):
                    break
                case .tick:
                    if let statistics = try? await torrent.runtime.statistics().get() {
                        progress.show(statistics, seeding: finished)
                        lastStatistics = statistics
                        trackers?.update(statistics, geometry: geometry)
                        // Few peers while downloading: ask the trackers again, every 10 s with none, every minute with
                        // a few (the announce core holds each tracker to its min interval).
                        let wait = statistics.peers.isEmpty ? 10.0 : 60.0
                        if !finished, statistics.peers.count < Self.fewPeers, Terminal.now() - lastPeerRequest >= wait {
                            lastPeerRequest = Terminal.now()
                            trackers?.announcer.requestPeers()
                        }
                    }
                    do {
                        if Terminal.now() - lastSave >= Self.resumeInterval {
                            try await saveResume(torrent, pool: pool)
                            lastSave = Terminal.now()
                        } else {
                            let storage = torrent.storage
                            try await pool.runIfActive { try storage.checkNotRemoved() }
                        }
                    } catch {
                        failure = error as? StorageError ?? StorageError(code: .ioError, message: "\(error)")
                        break loop
                    }
                case .interrupted(let signal):
                    interrupted = signal
                    break loop
                }
            }
        }
        ticker.cancel()
        progress.finish()
        await options.peerSources?.stop()
        // `stopped` to the trackers first (a few seconds at most), while the torrent still serves.
        if let statistics = try? await torrent.runtime.statistics().get() { lastStatistics = statistics }
        await trackers?.stop(lastStatistics, geometry: geometry)
        await torrent.stop()
        let saved = (try? await saveResume(torrent, pool: pool)) ?? false
        let finalHave = try? await torrent.runtime.have().get()
        if let statistics = try? await torrent.runtime.statistics().get() {
            Terminal.line(
                "Downloaded \(Terminal.size(statistics.downloaded)), uploaded \(Terminal.size(statistics.uploaded))"
                    + (statistics.wasted > 0 ? ", \(Terminal.size(statistics.wasted)) failed their hash check" : ""))
        }
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
        if let failure {
            throw Terminal.fail("\(failure.description) (verified pieces are kept; run again to resume)")
        }
        if interrupted != nil {
            Terminal.line(
                "Stopped: \(finalHave?.setCount ?? 0) of \(layout.pieceCount) pieces verified; "
                    + (saved ? "resume data saved" : "resume data NOT saved"))
            if !finished { throw ExitCode(130) }
        }
    }

    /// Saves what is verified, after putting the data on disk, off the event loop. Throws when the data
    /// cannot be put on disk (a storage failure: the torrent must stop); failing to write the resume file
    /// itself is a warning. Returns whether it was saved.
    @discardableResult
    private func saveResume(_ torrent: RunningTorrent, pool: NIOThreadPool) async throws(StorageError) -> Bool {
        guard let have = try? await torrent.runtime.have().get() else { return false }
        let layout = layout
        let directory = directory
        let infoHash = infoHash
        let path = resumePath
        let storage = torrent.storage
        do {
            try await pool.runIfActive { try storage.sync() }
        } catch {
            throw error as? StorageError ?? StorageError(code: .ioError, message: "\(error)")
        }
        do {
            try await pool.runIfActive {
                try ResumeData.capture(infoHash: infoHash, verified: have, layout: layout, directory: directory)
                    .save(to: path)
            }
            return true
        } catch {
            Terminal.printError("cannot save resume data to \(path): \(error)")
            return false
        }
    }

    /// Ctrl-C and SIGTERM become calls of `handler` instead of ending the process.
    static func watchSignals(_ handler: @escaping @Sendable (Int32) -> Void) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }
}
