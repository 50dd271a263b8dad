import NIOCore
import NIOPosix
import ShoalCore
import ShoalDHT

/// The DHT node on the network: a ``DHTNode`` (the pure core) on one event loop, one UDP socket per address
/// family (BEP 32: the IPv4 and IPv6 DHTs), and a timer. The runtime only feeds the core datagrams and the time
/// and carries out its actions; every decision is the core's.
///
/// Randomness comes from the system generator (transaction ids and token secrets must not be guessable).
public final class DHTRuntime: Sendable {
    public typealias Node = DHTNode<SystemRandomNumberGenerator>

    /// Where the node's sockets listen.
    public struct Binding: Sendable, Hashable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// What the node is doing, for reports.
    public struct Status: Sendable {
        public var id: NodeID
        public var nodes: [NodeAddress.Family: Int]
        public var replacements: [NodeAddress.Family: Int]
        public var pendingQueries: Int
        public var lookups: Int
        public var storedPeers: Int
        public var externalAddress: NodeAddress.Host?
        public var statistics: DHTStatistics
        public var ports: [NodeAddress.Family: Int]
    }

    struct Waiter {
        var onPeers: (@Sendable ([PeerAddress]) -> Void)?
        var promise: EventLoopPromise<LookupResult>
    }

    struct State {
        var node: Node
        var channels: [NodeAddress.Family: any Channel] = [:]
        var ports: [NodeAddress.Family: Int] = [:]
        var timer: Scheduled<Void>?
        var timerDeadline: Instant?
        var waiters: [LookupID: Waiter] = [:]
        /// The lookups for our own id that join the DHT.
        var joining: [EventLoopFuture<LookupResult>] = []
        var stopped = false
    }

    public let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    private let onIDChange: @Sendable (NodeID) -> Void

    private init(node: Node, eventLoop: any EventLoop, onIDChange: @escaping @Sendable (NodeID) -> Void) {
        self.eventLoop = eventLoop
        self.onIDChange = onIDChange
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(node: node), eventLoop: eventLoop)
    }

    /// The monotonic clock as the core counts time (the same clock as ``TorrentRuntime``).
    static func now() -> Instant { TorrentRuntime.now() }

    /// Binds one socket per binding (its family is the host's), then joins through `bootstrap` (and the nodes
    /// of `saved`). A binding that fails is skipped when another succeeds (a machine without IPv6); all failing
    /// is an error. `onIDChange` hears of a new BEP 42 id (to save it).
    public static func start(
        configuration: Node.Configuration, saved: DHTState? = nil, bindings: [Binding], bootstrap: [NodeAddress],
        group: any EventLoopGroup, onIDChange: @escaping @Sendable (NodeID) -> Void = { _ in }
    ) async throws -> DHTRuntime {
        var configuration = configuration
        var bound: [(NodeAddress.Family, Binding)] = []
        for binding in bindings {
            let family: NodeAddress.Family = binding.host.contains(":") ? .ipv6 : .ipv4
            bound.append((family, binding))
        }
        configuration.families = Array(Set(bound.map(\.0))).sorted { $0.rawValue < $1.rawValue }
        let now = Self.now()
        let node =
            saved.map { Node(configuration: configuration, state: $0, random: SystemRandomNumberGenerator(), now: now) }
            ?? Node(configuration: configuration, random: SystemRandomNumberGenerator(), now: now)
        let runtime = DHTRuntime(node: node, eventLoop: group.next(), onIDChange: onIDChange)
        var channels: [(NodeAddress.Family, any Channel)] = []
        var firstError: (any Error)?
        for (family, binding) in bound {
            do {
                channels.append((family, try await runtime.bind(binding, family: family)))
            } catch {
                firstError = firstError ?? error
            }
        }
        if channels.isEmpty { throw firstError ?? ChannelError.unknownLocalAddress }
        let opened = channels
        try await runtime.eventLoop.submit {
            for (family, channel) in opened {
                runtime.state.value.channels[family] = channel
                runtime.state.value.ports[family] = channel.localAddress?.port
            }
            // Families whose socket failed take no part.
            let open = Set(opened.map(\.0))
            runtime.state.value.node.removeFamilies { !open.contains($0) }
            let usable = bootstrap.filter { runtime.state.value.channels[$0.family] != nil }
            let (ids, actions) = runtime.state.value.node.start(bootstrap: usable, now: Self.now())
            for id in ids {
                let promise = runtime.eventLoop.makePromise(of: LookupResult.self)
                runtime.state.value.waiters[id] = Waiter(onPeers: nil, promise: promise)
                runtime.state.value.joining.append(promise.futureResult)
            }
            runtime.execute(actions)
        }.get()
        return runtime
    }

    private func bind(_ binding: Binding, family: NodeAddress.Family) async throws -> any Channel {
        var bootstrap = DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DHTChannelHandler(runtime: self))
                }
            }
        if family == .ipv6 {
            // The IPv6 socket takes only IPv6, so that an IPv4 socket can share its port.
            bootstrap = bootstrap.channelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
        }
        return try await bootstrap.bind(host: binding.host, port: binding.port).get()
    }

    /// The first address of a host name (getaddrinfo, on NIO's thread pool: it blocks), for bootstrap nodes
    /// given by name such as router.bittorrent.com.
    public static func resolve(host: String, port: Int) async -> NodeAddress? {
        let address = try? await NIOThreadPool.singleton.runIfActive {
            try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
        return address.flatMap(PeerAddress.init(socketAddress:)).map(NodeAddress.init)
    }

    // MARK: API

    /// Waits until the lookups for our own id that join the DHT have ended; their results.
    public func joined() async -> [LookupResult] {
        let futures = (try? await eventLoop.submit { self.state.value.joining }.get()) ?? []
        var results: [LookupResult] = []
        for future in futures {
            if let result = try? await future.get() { results.append(result) }
        }
        return results
    }

    /// Finds peers for `infoHash` in every family; `onPeers` hears of them as they come (on the event loop).
    public func getPeers(
        _ infoHash: NodeID, onPeers: (@Sendable ([PeerAddress]) -> Void)? = nil
    ) async -> [LookupResult] {
        await run(onPeers: onPeers) { node, now in node.getPeers(infoHash, now: now) }
    }

    /// Finds the nodes closest to `infoHash` and announces a peer on `port` to them (with `impliedPort`, the
    /// DHT socket's port counts instead).
    public func announce(
        _ infoHash: NodeID, port: UInt16, impliedPort: Bool = false, onPeers: (@Sendable ([PeerAddress]) -> Void)? = nil
    ) async -> [LookupResult] {
        await run(onPeers: onPeers) { node, now in node.announce(infoHash, port: port, impliedPort: impliedPort, now: now) }
    }

    /// A find_node lookup in every family.
    public func findNode(_ target: NodeID) async -> [LookupResult] {
        await run(onPeers: nil) { node, now in
            var ids: [LookupID] = []
            var actions: [DHTAction] = []
            for family in node.configuration.families {
                let (id, more) = node.startLookup(.findNode, target: target, family: family, now: now)
                if let id { ids.append(id) }
                actions += more
            }
            return (ids, actions)
        }
    }

    /// Pings a node (the BEP 5 PORT message asks for this); it enters the table if it answers.
    public func ping(_ address: NodeAddress) {
        eventLoop.execute { self.apply { $0.ping(address, now: Self.now()) } }
    }

    public func status() async -> Status {
        (try? await eventLoop.submit {
            let node = self.state.value.node
            return Status(
                id: node.id,
                nodes: [.ipv4: node.table(.ipv4).count, .ipv6: node.table(.ipv6).count],
                replacements: [.ipv4: node.table(.ipv4).replacementCount, .ipv6: node.table(.ipv6).replacementCount],
                pendingQueries: node.pendingQueries, lookups: node.activeLookups, storedPeers: node.storedPeers,
                externalAddress: node.externalAddress, statistics: node.statistics, ports: self.state.value.ports)
        }.get())
            ?? Status(
                id: .zero, nodes: [:], replacements: [:], pendingQueries: 0, lookups: 0, storedPeers: 0,
                externalAddress: nil, statistics: DHTStatistics(), ports: [:])
    }

    /// The state to save (id and nodes).
    public func savedState() async -> DHTState? {
        try? await eventLoop.submit { self.state.value.node.state }.get()
    }

    /// Closes the sockets; lookups still running end without a result.
    public func stop() async {
        let channels: [any Channel] =
            (try? await eventLoop.submit {
                self.state.value.stopped = true
                self.state.value.timer?.cancel()
                let waiters = self.state.value.waiters
                self.state.value.waiters = [:]
                for waiter in waiters.values { waiter.promise.fail(ChannelError.ioOnClosedChannel) }
                return Array(self.state.value.channels.values)
            }.get()) ?? []
        for channel in channels { try? await channel.close() }
    }

    // MARK: Driving

    private func run(
        onPeers: (@Sendable ([PeerAddress]) -> Void)?,
        _ start: @escaping @Sendable (inout Node, Instant) -> ([LookupID], [DHTAction])
    ) async -> [LookupResult] {
        let futures: [EventLoopFuture<LookupResult>] =
            (try? await eventLoop.submit {
                guard !self.state.value.stopped else { return [] }
                let (ids, actions) = start(&self.state.value.node, Self.now())
                var futures: [EventLoopFuture<LookupResult>] = []
                for id in ids {
                    let promise = self.eventLoop.makePromise(of: LookupResult.self)
                    self.state.value.waiters[id] = Waiter(onPeers: onPeers, promise: promise)
                    futures.append(promise.futureResult)
                }
                self.execute(actions)
                return futures
            }.get()) ?? []
        var results: [LookupResult] = []
        for future in futures {
            if let result = try? await future.get() { results.append(result) }
        }
        return results
    }

    func received(_ datagram: [UInt8], from source: NodeAddress) {
        apply { $0.received(datagram, from: source, now: Self.now()) }
    }

    private func apply(_ event: (inout Node) -> [DHTAction]) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped else { return }
        let actions = event(&state.value.node)
        execute(actions)
    }

    private func execute(_ actions: [DHTAction]) {
        var written: Set<NodeAddress.Family> = []
        for action in actions {
            switch action {
            case .send(let bytes, let destination):
                guard let channel = state.value.channels[destination.family],
                    let address = try? destination.peerAddress.socketAddress
                else { continue }
                var buffer = channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
                written.insert(destination.family)
            case .schedule(let deadline):
                schedule(at: deadline)
            case .peersFound(let id, _, let peers):
                state.value.waiters[id]?.onPeers?(peers)
            case .lookupFinished(let result):
                state.value.waiters.removeValue(forKey: result.id)?.promise.succeed(result)
            case .nodeIDChanged(let id):
                onIDChange(id)
            }
        }
        for family in written { state.value.channels[family]?.flush() }
    }

    private func schedule(at deadline: Instant) {
        state.value.timer?.cancel()
        state.value.timerDeadline = deadline
        let nanoseconds = UInt64(max(0, deadline.nanoseconds))
        state.value.timer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(nanoseconds)) {
            self.state.value.timer = nil
            self.apply { $0.tick(now: Self.now()) }
        }
    }
}
