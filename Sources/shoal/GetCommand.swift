import ArgumentParser
import ShoalCore
import ShoalNIO
import ShoalStorage
import ShoalSwarm
import ShoalTracker

/// Options `shoal get` and `shoal seed` share.
struct PeerOptions: ParsableArguments {
    @Option(name: .customLong("peer"), help: "A peer to connect to, HOST:PORT ([::1]:6881 for IPv6); repeat for more.")
    var peers: [String] = []

    @Option(name: .customLong("tracker"), help: "A tracker to announce to as well as the torrent's (http, https or udp URL); repeat for more.")
    var trackers: [String] = []

    @Option(help: "The port to listen on (0: any free port).")
    var port: Int = 6881

    @Option(help: "Upload at most this many bytes per second, e.g. 500k or 2M (default: no limit).")
    var maxUpload: ByteCount?

    @Option(help: "Download at most this many bytes per second (default: no limit).")
    var maxDownload: ByteCount?

    @Flag(help: "Hash all data on disk instead of trusting resume data.")
    var check = false

    @Flag(help: "Local service discovery (BEP 14): announce on the LAN's multicast groups and dial the peers heard there (off by default; never for a private torrent).")
    var lsd = false

    @Flag(name: .customLong("no-pex"), help: "No peer exchange (BEP 11): neither tell peers of others nor dial the peers they tell of.")
    var noPEX = false

    @Flag(help: "Find and announce peers in the DHT (BEP 5), joining through the public routers unless --dht-bootstrap is given.")
    var dht = false

    @Option(name: .customLong("dht-bootstrap"), help: "A DHT node to join through, HOST:PORT (implies --dht); repeat for more.")
    var dhtBootstrap: [String] = []

    @Flag(name: .customLong("no-dht"), help: "Never use the DHT (it is used with --dht or --dht-bootstrap, and for a magnet link with no tracker, no x.pe and no --peer).")
    var noDHT = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        for text in peers where PeerAddress(text) == nil {
            throw ValidationError("--peer \(text): not HOST:PORT (an IPv6 address goes in brackets: [::1]:6881)")
        }
        for text in trackers {
            do { _ = try TrackerURL(parsing: text) } catch { throw ValidationError("--tracker \(text): \(error)") }
        }
        for text in dhtBootstrap where DHTSession.split(text) == nil {
            throw ValidationError("--dht-bootstrap \(text): not HOST:PORT (an IPv6 address goes in brackets: [::1]:6881)")
        }
        if noDHT && (dht || !dhtBootstrap.isEmpty) { throw ValidationError("--no-dht excludes --dht and --dht-bootstrap") }
    }

    var swarmOptions: SwarmRun.Options {
        var options = SwarmRun.Options()
        options.port = port
        options.peers = peers.compactMap(PeerAddress.init)
        options.trackers = trackers
        options.maxUpload = maxUpload.flatMap { $0.bytes > 0 ? $0.bytes : nil }
        options.maxDownload = maxDownload.flatMap { $0.bytes > 0 ? $0.bytes : nil }
        options.forceCheck = check
        options.peerExchange = !noPEX
        var sources: [any PeerSource] = []
        if lsd {
            var random = SplitMix64(seed: UInt64(truncatingIfNeeded: Terminal.now().bitPattern))
            do {
                sources.append(
                    try LocalDiscoveryService(cookie: LocalDiscovery.cookie(using: &random), warn: { Terminal.printError($0) }))
            } catch {
                Terminal.printError("local service discovery is off: \(error)")
            }
        }
        if !noDHT && (dht || !dhtBootstrap.isEmpty) { sources.append(DHTPeerSource(bootstrap: dhtBootstrap)) }
        if !sources.isEmpty { options.peerSources = PeerSources(sources) { Terminal.printError($0) } }
        return options
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a torrent from its peers, verify it, and exit when complete.",
        discussion: """
            Progress is kept in a hidden resume file in the download directory (.INFOHASH.shoal-resume), \
            saved every 30 s, on completion and on Ctrl-C: a restart trusts the files that did not change \
            since and checks the others. File indices are those `shoal info` lists, from 0.

            From a magnet link, the torrent's metadata is fetched from the peers first (those of --peer \
            and the link's x.pe, and those they tell of), checked against the info-hash and saved as \
            NAME.torrent in the download directory; a later run with the same link uses that file.
            """)

    @Argument(help: "The .torrent file, or a magnet link (magnet:?xt=urn:btih:...).")
    var torrent: String

    @Option(name: .shortAndLong, help: "The download directory (default: the current one).")
    var output: String = "."

    @OptionGroup var peerOptions: PeerOptions

    @Flag(help: "Keep seeding after the download completes, until interrupted.")
    var seed = false

    @Flag(help: "Fetch pieces in order (for playing while downloading) instead of rarest first.")
    var sequential = false

    @Option(name: .customLong("skip"), help: "Do not download this file (an index); repeat for more.")
    var skipped: [Int] = []

    @Option(name: .customLong("first"), help: "Download this file (an index) before the others; repeat for more.")
    var first: [Int] = []

    func run() async throws {
        var options = peerOptions.swarmOptions
        let metainfo: Metainfo
        if MagnetFetch.isMagnetLink(torrent) {
            let link = try MagnetFetch.parse(torrent)
            // A bare link (no x.pe, no tr=) and no other source given: the DHT is the only way to its peers, so
            // it joins through the public routers, as every client does, unless --no-dht.
            if link.peers.isEmpty && link.trackers.isEmpty && options.peers.isEmpty && options.trackers.isEmpty
                && options.peerSources == nil && !peerOptions.noDHT
            {
                Terminal.line("DHT: the link names no tracker and no peer; joining the DHT through the public routers (--no-dht to wait for peers instead)")
                options.peerSources = PeerSources([DHTPeerSource(bootstrap: [])]) { Terminal.printError($0) }
            }
            let fetched = try await MagnetFetch(link: link, directory: output, options: options).run()
            metainfo = fetched.metainfo
            options.peers = fetched.peers
            options.port = fetched.port
        } else {
            metainfo = try TorrentFileLoader.load(torrent)
        }
        options.sequential = sequential
        if !skipped.isEmpty || !first.isEmpty {
            let count = metainfo.info.files.count
            var priorities = Array(repeating: PiecePriority.normal, count: count)
            for index in skipped + first where !(0..<count).contains(index) {
                throw Terminal.fail("file index \(index) is out of range: the torrent has \(count) files (0 to \(count - 1))")
            }
            for index in first { priorities[index] = .high }
            for index in skipped { priorities[index] = .skip }
            options.filePriorities = priorities
        }
        let run = SwarmRun(metainfo: metainfo, directory: output, options: options)
        let have = try run.startingPieces()
        try await run.run(have: have, keepSeeding: seed)
    }
}

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Serve a complete download to peers, until interrupted.",
        discussion: "The data is checked first, unless resume data says it is complete and unchanged.")

    @Argument(help: "The .torrent file.")
    var torrent: String

    @Option(help: "The directory that holds the torrent's data.")
    var data: String

    @OptionGroup var peerOptions: PeerOptions

    func run() async throws {
        let run = SwarmRun(metainfo: try TorrentFileLoader.load(torrent), directory: data, options: peerOptions.swarmOptions)
        let have = try run.startingPieces()
        guard have.isComplete else {
            throw Terminal.fail("\(data) holds \(have.setCount) of \(have.count) pieces of this torrent; seeding needs them all")
        }
        try await run.run(have: have, keepSeeding: true)
    }
}
