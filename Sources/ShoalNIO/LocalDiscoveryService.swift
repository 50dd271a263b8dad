import NIOCore
import NIOPosix
import ShoalCore
import ShoalSwarm

/// Local Service Discovery (BEP 14) on the network: UDP sockets that join the multicast groups, send the
/// announces a ``LocalDiscovery`` core asks for and hand it what they receive; the peers it finds go to the
/// torrent's runtime. A ``PeerSource``: `shoal get --lsd` and `shoal seed --lsd` turn it on. It is off by
/// default, and never on in the test suite except inside a network namespace the test makes (or on
/// unicast loopback endpoints, which exercise everything but the group membership).
public final class LocalDiscoveryService: PeerSource {
    /// One socket: where it binds, where announces go, and whether it joins a multicast group there.
    public struct Endpoint: Sendable {
        public var group: LocalDiscovery.Group
        public var bindHost: String
        public var bindPort: Int
        /// Where announces are sent (the multicast group, or a unicast address in tests).
        public var destination: SocketAddress
        /// Join `destination` as a multicast group.
        public var joinsGroup: Bool

        public init(
            group: LocalDiscovery.Group, bindHost: String, bindPort: Int, destination: SocketAddress, joinsGroup: Bool
        ) {
            self.group = group
            self.bindHost = bindHost
            self.bindPort = bindPort
            self.destination = destination
            self.joinsGroup = joinsGroup
        }

        /// BEP 14's groups: `239.192.152.143:6771` and `[ff15::efc0:988f]:6771`.
        public static func standard() throws -> [Endpoint] {
            let port = Int(LocalDiscoveryAnnouncement.port)
            return [
                Endpoint(
                    group: .ipv4, bindHost: "0.0.0.0", bindPort: port,
                    destination: try SocketAddress(ipAddress: LocalDiscoveryAnnouncement.ipv4Group, port: port),
                    joinsGroup: true),
                Endpoint(
                    group: .ipv6, bindHost: "::", bindPort: port,
                    destination: try SocketAddress(ipAddress: LocalDiscoveryAnnouncement.ipv6Group, port: port),
                    joinsGroup: true),
            ]
        }
    }

    struct State {
        var core: LocalDiscovery
        var channels: [(endpoint: Endpoint, channel: any Channel)] = []
        var deliver: [Digest20: @Sendable ([PeerAddress], ConnectionPlanner.Source) -> Void] = [:]
        var tick: RepeatedTask?
        var stopped = false
    }

    public let name = "LSD"
    public let allowedForPrivateTorrents = false
    public let endpoints: [Endpoint]
    private let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    private let warn: @Sendable (String) -> Void

    /// A service on `endpoints` (by default BEP 14's groups) with our own cookie; `warn` hears of an
    /// endpoint that cannot be opened (no IPv6, say) — the others still work.
    public init(
        endpoints: [Endpoint]? = nil, cookie: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        warn: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.endpoints = try endpoints ?? Endpoint.standard()
        self.eventLoop = group.next()
        self.warn = warn
        let core = LocalDiscovery(configuration: .init(cookie: cookie, groups: Set(self.endpoints.map(\.group))))
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(core: core), eventLoop: eventLoop)
    }

    /// Opens the sockets (on the first torrent) and announces `infoHash` from now on.
    public func start(
        infoHash: Digest20, port: Int, deliver: @escaping @Sendable ([PeerAddress], ConnectionPlanner.Source) -> Void
    ) async throws {
        let opened = try await eventLoop.submit { () -> Bool in
            let first = self.state.value.channels.isEmpty && self.state.value.tick == nil
            self.state.value.stopped = false
            return first
        }.get()
        if opened { try await open() }
        try await eventLoop.submit {
            self.state.value.deliver[infoHash] = deliver
            self.execute(self.state.value.core.add(infoHash, port: UInt16(clamping: port), now: TorrentRuntime.now()))
        }.get()
    }

    /// Closes the sockets.
    public func stop() async {
        let channels = try? await eventLoop.submit { () -> [any Channel] in
            self.state.value.stopped = true
            self.state.value.tick?.cancel()
            self.state.value.tick = nil
            self.state.value.deliver = [:]
            defer { self.state.value.channels = [] }
            return self.state.value.channels.map(\.channel)
        }.get()
        for channel in channels ?? [] { try? await channel.close() }
    }

    /// The UDP ports the sockets got (useful when binding port 0 in tests).
    public func boundPorts() async -> [Int] {
        (try? await eventLoop.submit { self.state.value.channels.compactMap { $0.channel.localAddress?.port } }.get()) ?? []
    }

    private func open() async throws {
        var opened: [(Endpoint, any Channel)] = []
        for endpoint in endpoints {
            do {
                let channel = try await DatagramBootstrap(group: eventLoop)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(LocalDiscoveryHandler(service: self))
                        }
                    }
                    .bind(host: endpoint.bindHost, port: endpoint.bindPort).get()
                if endpoint.joinsGroup {
                    guard let multicast = channel as? any MulticastChannel else {
                        try? await channel.close()
                        throw ChannelError.operationUnsupported
                    }
                    do {
                        try await multicast.joinGroup(endpoint.destination).get()
                    } catch {
                        try? await channel.close()
                        throw error
                    }
                }
                opened.append((endpoint, channel))
            } catch {
                warn("local service discovery: cannot open \(endpoint.destination): \(error)")
            }
        }
        guard !opened.isEmpty else { throw ChannelError.inputClosed }
        let channels = opened
        try await eventLoop.submit {
            self.state.value.channels = channels
            self.state.value.tick = self.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                self.execute(self.state.value.core.tick(now: TorrentRuntime.now()))
            }
        }.get()
    }

    /// A datagram from `sender`.
    func received(_ datagram: [UInt8], from sender: SocketAddress) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped, let address = PeerAddress(socketAddress: sender) else { return }
        execute(state.value.core.received(datagram, from: address.host, now: TorrentRuntime.now()))
    }

    private func execute(_ actions: [LocalDiscovery.Action]) {
        for action in actions {
            switch action {
            case .send(let bytes, let group):
                for (endpoint, channel) in state.value.channels where endpoint.group == group {
                    let envelope = AddressedEnvelope(remoteAddress: endpoint.destination, data: ByteBuffer(bytes: bytes))
                    channel.writeAndFlush(envelope, promise: nil)
                }
            case .found(let infoHash, let peer):
                state.value.deliver[infoHash]?([peer], .lsd)
            }
        }
    }
}

/// Hands every datagram of an LSD socket to the service.
final class LocalDiscoveryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let service: LocalDiscoveryService

    init(service: LocalDiscoveryService) {
        self.service = service
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // Longer than any announce: not worth copying.
        guard envelope.data.readableBytes <= LocalDiscoveryAnnouncement.maxLength else { return }
        service.received(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A bad datagram or an ICMP error: the socket stays open.
    }
}
