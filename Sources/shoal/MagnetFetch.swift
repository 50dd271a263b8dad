import ArgumentParser
import Dispatch
import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalStorage
import ShoalSwarm

/// The magnet phase of `shoal get MAGNET`: fetch the info dictionary from peers (BEP 9), check it against
/// the link's info-hashes, save it as NAME.torrent in the download directory (as libtorrent and
/// Transmission keep the .torrent of a magnet download), and hand the torrent and the peers met over to
/// the download, which then runs as for a .torrent.
///
/// Peers come from `--peer`, the link's `x.pe` and peer exchange; trackers (`tr=`) and the DHT are peer
/// sources that plug in through ``PeerSource`` (`TorrentRuntime.addPeers` / `MagnetRuntime.addPeers`).
struct MagnetFetch {
    let link: MagnetLink
    let directory: String
    let options: SwarmRun.Options
    /// The address the fetch listens on (`shoal demo`: 127.0.0.1).
    var listenHost = "::"
    /// Where progress lines go.
    var say: @Sendable (String) -> Void = { Terminal.line($0) }
    /// Whether Ctrl-C and SIGTERM stop the fetch (the command's own; not for `shoal demo`'s leechers).
    var stopsOnSignals = true
    /// Give up (throwing) when the metadata has not arrived by then (`Terminal.now()` seconds); nil: never.
    var deadline: Double?

    /// What the download starts with.
    struct Result {
        var metainfo: Metainfo
        /// The peers met while fetching, then those given: dialled first by the download.
        var peers: [PeerAddress]
        /// The port the fetch listened on (the download keeps it, so that peers that learnt it still reach us).
        var port: Int
    }

    /// Whether a `shoal get` argument is a magnet link rather than a file.
    static func isMagnetLink(_ text: String) -> Bool {
        text.trimmingPrefix(while: \.isWhitespace).lowercased().hasPrefix("magnet:")
    }

    /// The link, or a one-line failure saying what is wrong with it.
    static func parse(_ text: String) throws -> MagnetLink {
        do { return try MagnetLink(parsing: text) } catch { throw Terminal.fail("not a usable magnet link: \(error)") }
    }

    /// The path of the saved torrent for an info dictionary named `name`.
    static func torrentPath(directory: String, name: String) -> String {
        (directory.hasSuffix("/") ? directory : directory + "/") + name + ".torrent"
    }

    /// Peers the link names (`x.pe`) that are addresses; host names are not resolved (with a warning).
    var linkPeers: [PeerAddress] {
        link.peers.compactMap { text in
            guard let address = PeerAddress(text) else {
                Terminal.printError("ignoring x.pe=\(text): only IPv4 and [IPv6] addresses with a port are used")
                return nil
            }
            return address
        }
    }

    /// A torrent for this link saved by an earlier run (NAME.torrent, NAME from the link's `dn`), if any.
    func savedTorrent() -> Metainfo? {
        guard let name = link.displayName, (try? TorrentPath.validate(component: name)) != nil else { return nil }
        let path = Self.torrentPath(directory: directory, name: name)
        guard let bytes = try? WholeFile.read(path, limit: TorrentFileLoader.maxTorrentBytes),
            let metainfo = try? Metainfo(parsing: bytes), matches(metainfo)
        else { return nil }
        return metainfo
    }

    /// Whether the torrent is the one the link names (every info-hash of the link).
    func matches(_ metainfo: Metainfo) -> Bool {
        link.infoHashes.allSatisfy { hash in
            switch hash {
            case .v1(let digest): metainfo.infoHashV1 == digest
            case .v2(let digest): metainfo.infoHashV2 == digest
            }
        }
    }

    /// Fetches the metadata (unless saved before), saves it, and returns what the download needs.
    func run() async throws -> Result {
        let given = options.peers + linkPeers
        if let saved = savedTorrent() {
            say("Metadata: using \(Self.torrentPath(directory: directory, name: saved.info.name)) saved earlier")
            return Result(metainfo: saved, peers: given, port: options.port)
        }
        let trackerTiers = link.trackers.filter { !$0.isEmpty }.map { [$0] } + options.trackers.map { [$0] }
        if given.isEmpty && options.peerSources == nil && trackerTiers.isEmpty {
            Terminal.printError(
                "no peers to ask for the metadata: give --peer HOST:PORT, --tracker URL or --dht; waiting for peers that dial us")
        }
        var random = SplitMix64(seed: UInt64(truncatingIfNeeded: Terminal.now().bitPattern))
        let machine = MagnetStateMachine(
            configuration: .init(
                infoHashes: link.infoHashes, peerID: PeerID.shoal(using: &random), peerExchange: options.peerExchange,
                seed: random.next()))

        enum Event: Sendable {
            case metadata([UInt8], [PeerAddress])
            case tick
            case interrupted
        }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let signals = stopsOnSignals ? SwarmRun.watchSignals { _ in continuation.yield(.interrupted) } : []
        defer { for source in signals { source.cancel() } }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let magnet: RunningMagnet
        do {
            magnet = try await RunningMagnet.start(
                machine: machine, group: group, host: listenHost, port: options.port, peers: given
            ) { report in
                if case .metadata(let bytes, let peers) = report { continuation.yield(.metadata(bytes, peers)) }
            }
        } catch {
            try? await group.shutdownGracefully()
            throw Terminal.fail("cannot listen on port \(options.port): \(error)")
        }
        if let sources = options.peerSources {
            sources.route(to: magnet.runtime)
            await sources.start(infoHash: machine.configuration.wireInfoHash, port: magnet.port)
        }
        // The link's trackers (`tr=`) and --tracker: a leecher of unknown size (`left` 1, so that trackers count
        // it as a leecher and give it seeds) until the metadata arrives; the download announces anew.
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let runtime = magnet.runtime
        let trackers = SwarmTrackers.start(
            tiers: trackerTiers, infoHash: machine.configuration.wireInfoHash, peerID: machine.configuration.peerID,
            port: magnet.port, group: group, threadPool: pool, totals: .init(left: 1), seed: random.next(),
            say: say
        ) { runtime.addPeers($0, source: .tracker) }
        var lastPeerRequest = Terminal.now()
        let name = link.displayName.map { " (\($0))" } ?? ""
        say("Listening on port \(magnet.port); fetching the metadata of \(link.infoHashes[0])\(name) from peers")
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                continuation.yield(.tick)
            }
        }
        var fetched: ([UInt8], [PeerAddress])?
        var timedOut = false
        var lastStatus = ""
        loop: for await event in events {
            switch event {
            case .metadata(let bytes, let peers):
                fetched = (bytes, peers)
                break loop
            case .tick:
                guard let progress = try? await magnet.runtime.progress().get() else { continue }
                let pieces = progress.pieces.map { ", \($0.received)/\($0.total) pieces" } ?? ""
                let status = "Metadata: \(progress.connectedPeers) peers connected, \(progress.metadataPeers) with ut_metadata\(pieces)"
                if progress.connectedPeers == 0, Terminal.now() - lastPeerRequest >= 10 {
                    lastPeerRequest = Terminal.now()
                    trackers?.announcer.requestPeers()
                }
                if status != lastStatus { say(status) }
                lastStatus = status
                if let deadline, Terminal.now() >= deadline {
                    timedOut = true
                    break loop
                }
            case .interrupted:
                break loop
            }
        }
        ticker.cancel()
        let port = magnet.port
        options.peerSources?.unroute()
        await trackers?.stop(totals: .init(left: 1))
        await magnet.stop()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
        guard let (bytes, peers) = fetched else {
            await options.peerSources?.stop()
            if timedOut { throw Terminal.fail("the metadata did not arrive in time") }
            say("Stopped before the metadata arrived")
            throw ExitCode(130)
        }
        let metainfo: Metainfo
        do {
            metainfo = try Metainfo(infoDictionary: bytes, magnetLink: link)
        } catch {
            // It matches the info-hash, so this is the torrent: one Shoal cannot download safely.
            throw Terminal.fail("the torrent's metadata was fetched but cannot be used: \(error)")
        }
        save(metainfo)
        var seen = Set<PeerAddress>()
        return Result(metainfo: metainfo, peers: (peers + given).filter { seen.insert($0).inserted }, port: port)
    }

    /// Writes NAME.torrent in the download directory; another torrent of that name is not replaced (it is
    /// saved as NAME.INFOHASH.torrent instead). Failing to save is a warning: the download goes on.
    private func save(_ metainfo: Metainfo) {
        do { try Directories.make(directory) } catch {
            Terminal.printError("cannot make the directory \(directory): \(error)")
            return
        }
        var path = Self.torrentPath(directory: directory, name: metainfo.info.name)
        if let bytes = try? WholeFile.read(path, limit: TorrentFileLoader.maxTorrentBytes),
            let existing = try? Metainfo(parsing: bytes), existing.infoBytes != metainfo.infoBytes
        {
            path = Self.torrentPath(directory: directory, name: "\(metainfo.info.name).\(metainfo.infoHash.hex)")
        }
        do {
            try WholeFile.writeAtomically(metainfo.encoded(), to: path)
            say("Metadata: \(Terminal.size(Int64(metainfo.infoBytes.count))) checked; saved as \(path)")
        } catch {
            Terminal.printError("cannot save \(path): \(error)")
        }
    }
}
