import ArgumentParser
import NIOCore
import NIOPosix
import ShoalCore
import ShoalDHT
import ShoalNIO
import ShoalStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct DHTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dht",
        abstract: "Run a Mainline DHT node (BEP 5), or look up and announce peers through the DHT.",
        subcommands: [DHTRunCommand.self, DHTGetPeersCommand.self, DHTAnnounceCommand.self, DHTSimulateCommand.self],
        defaultSubcommand: DHTRunCommand.self)

    /// The routers every client bootstraps from when it knows no node (BEP 5 leaves the choice to clients).
    static let publicRouters = ["router.bittorrent.com:6881", "dht.transmissionbt.com:6881", "router.utorrent.com:6881"]
}

/// Options every `shoal dht` command shares.
struct DHTNodeOptions: ParsableArguments {
    @Option(
        name: .customLong("bootstrap"),
        help: """
            A node to join through, HOST:PORT (a name is resolved; [::1]:6881 for IPv6); repeat for more. \
            Default: router.bittorrent.com:6881, dht.transmissionbt.com:6881, router.utorrent.com:6881.
            """)
    var bootstrap: [String] = []

    @Flag(help: "Join through no node: the first node of a new DHT, or one that rejoins from --state only.")
    var noBootstrap = false

    @Option(name: .customLong("bind"), help: "An address to listen on; repeat for IPv4 and IPv6 (default: 0.0.0.0 and ::).")
    var bind: [String] = []

    @Option(help: "A file that keeps the node's id and routing table across runs (read at start, written every minute and at exit).")
    var state: String?

    @Flag(help: "Read-only node (BEP 43): answer no queries and ask other nodes to leave us out of their tables.")
    var readOnly = false

    func validate() throws {
        if noBootstrap && !bootstrap.isEmpty { throw ValidationError("--no-bootstrap and --bootstrap exclude each other") }
        for host in bind where PeerAddress(host.contains(":") ? "[\(host)]:1" : "\(host):1") == nil {
            throw ValidationError("--bind \(host): not an IPv4 or IPv6 address")
        }
        for text in bootstrap where DHTSession.split(text) == nil {
            throw ValidationError("--bootstrap \(text): not HOST:PORT (an IPv6 address goes in brackets: [::1]:6881)")
        }
    }
}

/// What `shoal dht get-peers` and `shoal dht announce` share: the torrent and the lookup's node.
struct DHTLookupOptions: ParsableArguments {
    @Argument(help: "The info-hash (40 hex digits, 32 base32 letters, or a magnet link).")
    var infoHash: InfoHashArgument

    @Option(help: "The node's UDP port (0: any free port).")
    var dhtPort: Int = 0

    @Option(help: "Give up after this many seconds.")
    var timeout: Double = 60

    func validate() throws {
        guard (0...65535).contains(dhtPort) else { throw ValidationError("--dht-port must be between 0 and 65535") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }
}

/// A running node for one command: sockets, bootstrap resolution, the state file.
struct DHTSession {
    let runtime: DHTRuntime
    let group: MultiThreadedEventLoopGroup
    let statePath: String?

    /// `host:port` split at the last colon, brackets removed; nil when malformed.
    static func split(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return (host, port)
    }

    static func start(_ options: DHTNodeOptions, port: Int) async throws -> DHTSession {
        try await start(
            bootstrap: options.noBootstrap ? [] : (options.bootstrap.isEmpty ? DHTCommand.publicRouters : options.bootstrap),
            bind: options.bind, statePath: options.state, readOnly: options.readOnly, port: port)
    }

    /// A node on `port` of each address in `bind` (default: 0.0.0.0 and ::), joining through `bootstrap`
    /// (HOST:PORT texts, names resolved) and the nodes saved at `statePath`.
    static func start(
        bootstrap texts: [String], bind: [String] = [], statePath: String? = nil, readOnly: Bool = false, port: Int
    ) async throws -> DHTSession {
        var saved: DHTState?
        if let path = statePath, access(path, F_OK) == 0 {
            do {
                saved = try DHTState(decoding: try WholeFile.read(path, limit: 1 << 20))
            } catch {
                Terminal.printError("\(path): \(error); starting with a new id and no saved nodes")
            }
        }
        var bootstrap: [NodeAddress] = []
        for text in texts {
            if let address = await resolve(text) {
                bootstrap.append(address)
            } else {
                Terminal.printError("cannot resolve bootstrap node \(text); going on without it")
            }
        }
        let hosts = bind.isEmpty ? ["0.0.0.0", "::"] : bind
        var configuration = DHTRuntime.Node.Configuration()
        configuration.readOnly = readOnly
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let runtime = try await DHTRuntime.start(
                configuration: configuration, saved: saved,
                bindings: hosts.map { DHTRuntime.Binding(host: $0, port: port) }, bootstrap: bootstrap, group: group
            ) { id in
                Terminal.line("Node id is now \(id.hex) (BEP 42: it conforms to our external address)")
            }
            return DHTSession(runtime: runtime, group: group, statePath: statePath)
        } catch {
            try? await group.shutdownGracefully()
            throw Terminal.fail("cannot open the DHT's UDP socket on port \(port): \(error)")
        }
    }

    /// A bootstrap node's address: parsed, or resolved by name.
    static func resolve(_ text: String) async -> NodeAddress? {
        if let address = NodeAddress(text) { return address }
        guard let (host, port) = split(text) else { return nil }
        return await DHTRuntime.resolve(host: host, port: port)
    }

    /// Writes the state file, if there is one.
    func save() async {
        guard let statePath, let state = await runtime.savedState() else { return }
        do { try WholeFile.writeAtomically(state.encoded, to: statePath) } catch {
            Terminal.printError("cannot save the DHT state to \(statePath): \(error)")
        }
    }

    func stop() async {
        await save()
        await runtime.stop()
        try? await group.shutdownGracefully()
    }

    /// `[v4 port] [v6 port]` for the listening line.
    static func describe(_ status: DHTRuntime.Status) -> String {
        NodeAddress.Family.allCases.compactMap { family in status.ports[family].map { "\(family) UDP port \($0)" } }
            .joined(separator: ", ")
    }

    static func describeTable(_ status: DHTRuntime.Status) -> String {
        let v4 = status.nodes[.ipv4] ?? 0
        let v6 = status.nodes[.ipv6] ?? 0
        return "\(v4 + v6) nodes (IPv4 \(v4), IPv6 \(v6))"
    }
}

/// An info-hash from 40 hex digits, 32 base32 letters or a magnet link.
struct InfoHashArgument: ExpressibleByArgument {
    let id: NodeID

    init?(argument: String) {
        if argument.hasPrefix("magnet:") {
            guard let link = try? MagnetLink(parsing: argument), let first = link.infoHashes.first else { return nil }
            id = NodeID(first.truncated)
        } else if argument.count == 40, let id = NodeID(hex: argument) {
            self.id = id
        } else if argument.count == 64, let bytes = Hex.decode(argument) {
            // A v2 info-hash: the DHT uses its first 20 bytes (BEP 52).
            id = NodeID(bytes: bytes.prefix(20))!
        } else if argument.count == 32, let bytes = Base32.decode(argument), let id = NodeID(bytes: bytes) {
            self.id = id
        } else {
            return nil
        }
    }
}

struct DHTRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a DHT node until interrupted, reporting its routing table size.",
        discussion: """
            The node joins through the bootstrap nodes (or the nodes saved in --state), answers ping, find_node, \
            get_peers and announce_peer, stores announced peers for 30 minutes and refreshes idle buckets. Tests \
            and demos must pass loopback --bootstrap nodes (or --no-bootstrap), never the public routers.
            """)

    @OptionGroup var node: DHTNodeOptions

    @Option(help: "The UDP port (0: any free port).")
    var port: Int = 6881

    @Option(help: "Seconds between reports of the routing table.")
    var reportInterval: Double = 10

    @Option(help: "Stop after this many seconds (default: run until interrupted).")
    var duration: Double?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard reportInterval > 0 else { throw ValidationError("--report-interval must be positive") }
    }

    func run() async throws {
        let session = try await DHTSession.start(node, port: port)
        let status = await session.runtime.status()
        Terminal.line("DHT node \(status.id.hex) on \(DHTSession.describe(status))")
        enum Event { case report, stop }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let signals = SwarmRun.watchSignals { _ in continuation.yield(.stop) }
        defer { for source in signals { source.cancel() } }
        let interval = reportInterval
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(interval))
                continuation.yield(.report)
            }
        }
        let timer = Task { [duration] in
            guard let duration else { return }
            try? await Task.sleep(for: .seconds(duration))
            continuation.yield(.stop)
        }
        let started = Terminal.now()
        var lastSave = started
        for await event in events {
            guard event == .report else { break }
            let status = await session.runtime.status()
            let statistics = status.statistics
            Terminal.line(
                "\(Terminal.fixed(Terminal.now() - started, 0)) s: \(DHTSession.describeTable(status)), "
                    + "\(status.replacements.values.reduce(0, +)) waiting, \(status.lookups) lookups, "
                    + "\(status.storedPeers) stored peers, datagrams in \(statistics.datagramsReceived) "
                    + "out \(statistics.datagramsSent)")
            if Terminal.now() - lastSave >= 60 {
                await session.save()
                lastSave = Terminal.now()
            }
        }
        ticker.cancel()
        timer.cancel()
        await session.stop()
    }
}

struct DHTGetPeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-peers",
        abstract: "Find the peers of a torrent in the DHT; prints one HOST:PORT per line.",
        discussion: "Exits 0 when peers were found, 1 when none were.")

    @OptionGroup var lookup: DHTLookupOptions

    @OptionGroup var node: DHTNodeOptions

    var infoHash: InfoHashArgument { lookup.infoHash }

    func run() async throws {
        let session = try await DHTSession.start(node, port: lookup.dhtPort)
        let found = try await withTimeout(lookup.timeout, session: session) {
            // The lookup starts from the bootstrap nodes when the table is empty: no need to join first.
            await session.runtime.getPeers(infoHash.id) { peers in
                for peer in peers { Terminal.line(peer.description) }
            }
        }
        await session.stop()
        let count = found.reduce(0) { $0 + $1.peers.count }
        for result in found {
            Terminal.writeStderr(
                "\(result.family): \(result.peers.count) peers from \(result.responses) of \(result.queries) nodes asked, "
                    + "\(Terminal.fixed(result.duration.seconds, 2)) s\n")
        }
        if count == 0 { throw Terminal.fail("no peers found for \(infoHash.id.hex)") }
    }
}

struct DHTAnnounceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "announce",
        abstract: "Announce a peer for a torrent to the nodes closest to its info-hash.",
        discussion: "Exits 0 when at least one node stored the announce.")

    @OptionGroup var lookup: DHTLookupOptions

    @Option(help: "The peer's TCP port to announce.")
    var port: Int?

    @Flag(help: "Announce the node's UDP port instead of --port (BEP 5 implied_port).")
    var impliedPort = false

    @OptionGroup var node: DHTNodeOptions

    var infoHash: InfoHashArgument { lookup.infoHash }

    func validate() throws {
        guard impliedPort || port != nil else { throw ValidationError("--port is required (or --implied-port)") }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be between 1 and 65535") }
    }

    func run() async throws {
        let session = try await DHTSession.start(node, port: lookup.dhtPort)
        let results = try await withTimeout(lookup.timeout, session: session) {
            await session.runtime.announce(infoHash.id, port: UInt16(port ?? 0), impliedPort: impliedPort)
        }
        await session.stop()
        var stored = 0
        for result in results {
            stored += result.announced
            Terminal.line(
                "\(result.family): announced to \(result.announced) of the \(result.closest.count) closest nodes "
                    + "(\(result.queries) queries, \(Terminal.fixed(result.duration.seconds, 2)) s)")
        }
        if stored == 0 { throw Terminal.fail("no node stored the announce for \(infoHash.id.hex)") }
    }
}

/// Runs `body`, or fails after `seconds` (the session is stopped first).
private func withTimeout<T: Sendable>(
    _ seconds: Double, session: DHTSession, _ body: @escaping @Sendable () async -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let value = first else {
            await session.stop()
            throw Terminal.fail("timed out after \(Terminal.fixed(seconds, 0)) s")
        }
        return value
    }
}

