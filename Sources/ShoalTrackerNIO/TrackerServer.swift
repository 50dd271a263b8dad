import NIOCore
import NIOHTTP1
import NIOPosix
import ShoalCore
import ShoalStorage
import ShoalTracker
import Synchronization

/// `shoal tracker`: one swarm registry served over HTTP (`/announce`, `/scrape`: NIO's HTTP/1 pipeline and
/// ``TrackerHTTPHandler``) and UDP (BEP 15), on each bind address.
///
/// The registry and both protocol cores live under one lock: a UDP datagram or an HTTP request holds it
/// for the microseconds its core takes (no `await` inside), so both protocols see one registry without a
/// hop between threads. Expired peers are swept every second, a bounded amount at a time; with a state
/// file the registry is saved every few minutes and at stop, and read back at start.
public final class TrackerServer: Sendable {
    public struct Configuration: Sendable {
        /// nil: no HTTP; 0: any free port.
        public var httpPort: Int?
        /// nil: no UDP; 0: any free port.
        public var udpPort: Int?
        /// Addresses to listen on; empty: `::` (IPv6 and IPv4 alike), or `0.0.0.0` where IPv6 is missing.
        public var bindAddresses: [String]
        public var registry: SwarmRegistry.Configuration
        public var udp: UDPTrackerServer.Configuration
        public var maxFullScrape: Int
        /// Where the registry is kept across restarts; nil: nowhere.
        public var statePath: String?
        public var saveInterval: Interval
        /// Event loop threads (one is fastest per CPU second: the registry has one lock anyway).
        public var threads: Int
        /// A group to serve on instead of one of `threads` of its own (kept running at stop): `shoal
        /// tracker` passes NIO's singleton group.
        public var group: (any EventLoopGroup)?
        /// An HTTP connection that sends nothing for this long is closed (slow or abandoned clients must
        /// not hold sockets for ever).
        public var httpIdleTimeout: Interval

        public init(
            httpPort: Int? = 6969, udpPort: Int? = 6969, bindAddresses: [String] = [],
            registry: SwarmRegistry.Configuration, udp: UDPTrackerServer.Configuration = .init(),
            maxFullScrape: Int = 10_000, statePath: String? = nil, saveInterval: Interval = .seconds(300), threads: Int = 1,
            group: (any EventLoopGroup)? = nil, httpIdleTimeout: Interval = .seconds(60)
        ) {
            self.httpPort = httpPort
            self.udpPort = udpPort
            self.bindAddresses = bindAddresses
            self.registry = registry
            self.udp = udp
            self.maxFullScrape = maxFullScrape
            self.statePath = statePath
            self.saveInterval = saveInterval
            self.threads = threads
            self.group = group
            self.httpIdleTimeout = httpIdleTimeout
        }
    }

    struct State: Sendable {
        var registry: SwarmRegistry
        var udp: UDPTrackerServer
        var http: HTTPTrackerServer
        var httpAnnounces = 0
        var httpScrapes = 0
    }

    /// What the tracker holds and has done, for its status line.
    public struct Status: Sendable {
        public var swarms: Int
        public var peers: Int
        public var udp: UDPTrackerServer.Counters
        public var httpAnnounces: Int
        public var httpScrapes: Int
    }

    public let configuration: Configuration
    private let state: Mutex<State>
    private let group: any EventLoopGroup
    /// The group is ours to shut down.
    private let ownsGroup: Bool
    private let running = Mutex<Running>(Running())
    /// Open HTTP connections: closed when idle, and at stop.
    let httpConnections = TrackerHTTPConnections()

    struct Running: Sendable {
        var udpChannels: [any Channel] = []
        var httpServers: [any Channel] = []
        var timers: [RepeatedTask] = []
        var stopped = false
    }

    /// Where it listens, once started.
    public private(set) var httpAddresses: [SocketAddress] {
        get { addresses.withLock { $0.http } }
        set { addresses.withLock { $0.http = newValue } }
    }
    public private(set) var udpAddresses: [SocketAddress] {
        get { addresses.withLock { $0.udp } }
        set { addresses.withLock { $0.udp = newValue } }
    }
    private let addresses = Mutex<(http: [SocketAddress], udp: [SocketAddress])>(([], []))

    /// A warning about the state file (it could not be read and the tracker started empty), for the user.
    public let stateWarning: String?

    private init(configuration: Configuration, registry: SwarmRegistry, stateWarning: String?, secret: (UInt64, UInt64)) {
        self.configuration = configuration
        let now = TrackerClock.now()
        state = Mutex(
            State(
                registry: registry, udp: UDPTrackerServer(configuration: configuration.udp, secret: secret, now: now),
                http: HTTPTrackerServer(maxFullScrape: configuration.maxFullScrape, maxPeers: configuration.registry.maxNumWant)))
        if let shared = configuration.group {
            group = shared
            ownsGroup = false
        } else {
            group = MultiThreadedEventLoopGroup(numberOfThreads: max(configuration.threads, 1))
            ownsGroup = true
        }
        self.stateWarning = stateWarning
    }

    /// Reads the state file (if any), binds every socket and starts serving. Throws when a socket cannot
    /// be bound (the port is taken, the address is not local), after closing what was opened.
    public static func start(configuration: Configuration) async throws -> TrackerServer {
        var generator = SystemRandomNumberGenerator()
        let now = TrackerClock.now()
        var registry = SwarmRegistry(configuration: configuration.registry, now: now)
        var warning: String?
        if let path = configuration.statePath {
            do {
                let bytes = try WholeFile.read(path, limit: 1 << 34)
                registry = try SwarmRegistry(restoring: bytes, configuration: configuration.registry, now: now)
            } catch let error as StorageError where error.code == .fileNotFound {
                warning = nil
            } catch {
                warning = "cannot read the state file \(path): \(error); starting empty"
            }
        }
        let server = TrackerServer(
            configuration: configuration, registry: registry, stateWarning: warning,
            secret: (generator.next(), generator.next()))
        do {
            try await server.bind()
        } catch {
            await server.stop(save: false)
            throw error
        }
        server.startTimers()
        return server
    }

    private func bind() async throws {
        var hosts = configuration.bindAddresses
        let defaulted = hosts.isEmpty
        if defaulted { hosts = ["::"] }
        for host in hosts {
            do {
                try await bind(host: host)
            } catch where defaulted && host == "::" {
                // No IPv6 on this machine: IPv4 only.
                try await bind(host: "0.0.0.0")
            }
        }
    }

    private func bind(host: String) async throws {
        if let port = configuration.udpPort {
            let channel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
                // 64 datagrams of up to 1536 bytes per recvmmsg (a BEP 15 request is at most 16 + 74·20 bytes).
                // The batch's buffer stays under glibc's 128 KiB mmap threshold: at 64 × 2048 bytes every batch
                // was an mmap and munmap, with their page faults.
                .channelOption(.datagramVectorReadMessageCount, value: 64)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 1536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPTrackerServerHandler(tracker: self))
                    }
                }
                .bind(host: host, port: port).get()
            running.withLock { $0.udpChannels.append(channel) }
            if let address = channel.localAddress { udpAddresses.append(address) }
        }
        if let port = configuration.httpPort {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 1024)
                // No child channel options: TCP_NODELAY, which NIO sets on the listening socket, is inherited
                // by every accepted one; setting it again cost a system call and NIO's option machinery
                // (futures, casts) per connection.
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        // NIO's HTTP/1 request decoder (llhttp, with its limits) and response encoder; the
                        // handler sets the framing headers itself (every answer has a Content-Length), so the
                        // encoder need not look for and remove others in each answer's headers.
                        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder(configuration: Self.httpEncoding))
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: Self.httpLimits)))
                        // The handler registers the connection with `httpConnections` (idle timeout, stop).
                        try channel.pipeline.syncOperations.addHandler(TrackerHTTPHandler(tracker: self))
                    }
                }
                .bind(host: host, port: port).get()
            running.withLock { $0.httpServers.append(channel) }
            if let address = channel.localAddress { httpAddresses.append(address) }
        }
    }

    /// Answers carry their own `Content-Length` (see TrackerHTTPHandler).
    private static var httpEncoding: HTTPResponseEncoder.Configuration {
        var configuration = HTTPResponseEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = false
        return configuration
    }

    /// A request head (line and headers) of at most 16 KiB: an announce is a few hundred bytes, a scrape
    /// of many info-hashes a few KiB.
    private static var httpLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 16 << 10
        limits.maxHeaderListSize = 16 << 10
        limits.maxHeaderFieldCount = 100
        return limits
    }

    private func startTimers() {
        let loop = group.next()
        // An HTTP connection that read nothing for the idle timeout is closed within the second after.
        let idleSeconds = UInt32(clamping: max((configuration.httpIdleTimeout.nanoseconds + 999_999_999) / 1_000_000_000, 1))
        let sweep = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            // A second of announces' worth of expiry checks at most, so no request waits long for the lock.
            state.withLock { _ = $0.registry.sweep(now: TrackerClock.now(), budget: $0.registry.sweepBudgetPerSecond) }
            httpConnections.tick(idleSeconds: idleSeconds)
        }
        var timers = [sweep]
        if configuration.statePath != nil {
            let interval = TimeAmount.nanoseconds(max(configuration.saveInterval.nanoseconds, 1_000_000_000))
            timers.append(
                loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                    let snapshot = state.withLock { $0.registry.snapshot(now: TrackerClock.now()) }
                    Task.detached { try? self.write(snapshot) }
                })
        }
        running.withLock { $0.timers = timers }
    }

    // MARK: - Serving

    /// A UDP datagram received at `now` (called on the UDP channel's event loop).
    func handleDatagram(_ packet: UnsafeRawBufferPointer, from source: TrackerHost, now: Instant, reply: inout [UInt8]) -> Bool {
        state.withLock { state in
            state.udp.received(packet, from: source, now: now, registry: &state.registry, reply: &reply)
        }
    }

    /// Appends the body answering `GET /announce?query` to `body`.
    func handleAnnounce(query: UnsafeRawBufferPointer, from source: TrackerHost, body: inout [UInt8]) {
        let now = TrackerClock.now()
        state.withLock { state in
            state.http.announce(query: query, from: source, now: now, registry: &state.registry, body: &body)
            state.httpAnnounces += 1
        }
    }

    /// Appends the body answering `GET /scrape?query` to `body`.
    func handleScrape(query: UnsafeRawBufferPointer, body: inout [UInt8]) {
        state.withLock { state in
            state.http.scrape(query: query, registry: state.registry, body: &body)
            state.httpScrapes += 1
        }
    }

    public var status: Status {
        state.withLock {
            Status(
                swarms: $0.registry.swarmCount, peers: $0.registry.peerCount, udp: $0.udp.counters, httpAnnounces: $0.httpAnnounces,
                httpScrapes: $0.httpScrapes)
        }
    }

    /// A swarm's counts now; nil when the tracker does not know it.
    public func counts(_ infoHash: Bytes20) -> ScrapeCounts? {
        state.withLock { $0.registry.counts(infoHash) }
    }

    /// Bytes the registry's structures hold (an estimate from their capacities).
    public var registryBytes: Int { state.withLock { $0.registry.bytesAllocated } }

    // MARK: - Stopping and saving

    /// Stops serving (requests already read are answered; open connections are closed), then saves the state file when there is one.
    public func stop(save: Bool = true) async {
        let stopping = running.withLock { running -> Running? in
            guard !running.stopped else { return nil }
            running.stopped = true
            return running
        }
        guard let stopping else { return }
        for timer in stopping.timers { timer.cancel() }
        for channel in stopping.udpChannels { try? await channel.close() }
        for channel in stopping.httpServers { try? await channel.close() }
        // Requests already read were answered in the read that completed them; what is left are idle
        // connections or partial requests.
        for channel in httpConnections.stop() { try? await channel.close() }
        if save, configuration.statePath != nil {
            try? saveState()
        }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Writes the registry to the state file now.
    public func saveState() throws {
        let snapshot = state.withLock { $0.registry.snapshot(now: TrackerClock.now()) }
        try write(snapshot)
    }

    private func write(_ snapshot: [UInt8]) throws {
        guard let path = configuration.statePath else { return }
        try WholeFile.writeAtomically(snapshot, to: path)
    }
}

/// A tracker socket that could not be opened.
public struct TrackerServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
