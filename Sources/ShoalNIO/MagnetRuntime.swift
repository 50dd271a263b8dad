import NIOCore
import NIOPosix
import ShoalCore
import ShoalSwarm

/// Runs one ``MagnetStateMachine`` for real: TCP through SwiftNIO, time from the monotonic clock, all state
/// on one event loop. It ends by reporting the info dictionary (and the peers to carry over) once; the
/// caller then starts a ``TorrentRuntime`` (see docs/ARCHITECTURE.md, "Magnet links").
public final class MagnetRuntime: Sendable {
    /// What the runtime reports to whoever drives it.
    public enum Report: Sendable {
        /// The info dictionary's bytes, checked against the info-hashes, and the peers worth dialling.
        case metadata([UInt8], peers: [PeerAddress])
        case peerCount(Int)
    }

    /// Where the fetch stands.
    public struct Progress: Sendable {
        public var connectedPeers: Int
        /// Connected peers that advertise `ut_metadata`.
        public var metadataPeers: Int
        public var knownPeers: Int
        /// Metadata pieces received of how many, once a peer advertised a size.
        public var pieces: (received: Int, total: Int)?
    }

    struct State {
        var machine: MagnetStateMachine
        var channels: [PeerKey: any Channel] = [:]
        var tick: RepeatedTask?
        var stopped = false
    }

    public let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    private let report: @Sendable (Report) -> Void

    public init(machine: MagnetStateMachine, group: any EventLoopGroup, report: @escaping @Sendable (Report) -> Void) {
        self.eventLoop = group.next()
        self.report = report
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(machine: machine), eventLoop: eventLoop)
    }

    // MARK: - Driving

    /// Starts the clock and dials `peers`.
    public func start(peers: [PeerAddress]) {
        eventLoop.execute {
            let tick = self.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) {
                _ in
                self.apply { $0.tick(now: TorrentRuntime.now()) }
            }
            self.state.value.tick = tick
            self.apply { $0.addPeers(peers, source: .manual, now: TorrentRuntime.now()) }
        }
    }

    /// More peers from a source (trackers, the DHT, local discovery): dialled as the limits allow.
    public func addPeers(_ peers: [PeerAddress], source: ConnectionPlanner.Source) {
        eventLoop.execute {
            self.apply { $0.addPeers(peers, source: source, now: TorrentRuntime.now()) }
        }
    }

    /// The port the listener got, told to peers in the extension handshake.
    public func setListenPort(_ port: Int) {
        eventLoop.execute { self.state.value.machine.setListenPort(UInt16(clamping: port)) }
    }

    /// Closes every connection and stops the clock.
    public func stop() -> EventLoopFuture<Void> {
        eventLoop.submit {
            self.state.value.stopped = true
            self.state.value.tick?.cancel()
            let channels = Array(self.state.value.channels.values)
            self.state.value.channels = [:]
            for channel in channels { channel.close(promise: nil) }
        }
    }

    /// Where the fetch stands now.
    public func progress() -> EventLoopFuture<Progress> {
        eventLoop.submit {
            let machine = self.state.value.machine
            return Progress(
                connectedPeers: machine.connectedPeers, metadataPeers: machine.metadataPeers,
                knownPeers: machine.knownPeers, pieces: machine.progress)
        }
    }

    /// A connection the listener accepted.
    func accepted(_ channel: any Channel) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped, let address = channel.remoteAddress.flatMap(PeerAddress.init(socketAddress:)),
            let key = state.value.machine.accepted(from: address, now: TorrentRuntime.now())
        else {
            channel.close(promise: nil)
            return
        }
        attach(channel, key: key)
    }

    // MARK: - Executing actions

    private func apply(_ event: (inout MagnetStateMachine) -> [MagnetStateMachine.Action]) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped else { return }
        execute(event(&state.value.machine))
    }

    private func execute(_ actions: [MagnetStateMachine.Action]) {
        var flush: Set<PeerKey> = []
        for action in actions {
            switch action {
            case .connect(let key, let address):
                connect(key, to: address)
            case .send(let key, let bytes):
                guard let channel = state.value.channels[key] else { continue }
                channel.write(bytes, promise: nil)
                flush.insert(key)
            case .close(let key):
                state.value.channels.removeValue(forKey: key)?.close(promise: nil)
                report(.peerCount(state.value.channels.count))
            case .ban:
                break
            case .metadata(let bytes, let peers):
                state.value.tick?.cancel()
                report(.metadata(bytes, peers: peers))
            }
        }
        for key in flush { state.value.channels[key]?.flush() }
    }

    private func connect(_ key: PeerKey, to address: PeerAddress) {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        let future: EventLoopFuture<any Channel>
        do {
            future = bootstrap.connect(to: try address.socketAddress)
        } catch {
            apply { $0.connectionFailed(key, now: TorrentRuntime.now()) }
            return
        }
        future.whenComplete { result in
            switch result {
            case .success(let channel):
                guard !self.state.value.stopped else {
                    channel.close(promise: nil)
                    return
                }
                self.attach(channel, key: key)
                self.apply { $0.connectionEstablished(key, now: TorrentRuntime.now()) }
            case .failure:
                self.apply { $0.connectionFailed(key, now: TorrentRuntime.now()) }
            }
        }
    }

    private func attach(_ channel: any Channel, key: PeerKey) {
        state.value.channels[key] = channel
        report(.peerCount(state.value.channels.count))
        do {
            try channel.pipeline.syncOperations.addHandler(MagnetChannelHandler(runtime: self, key: key))
        } catch {
            channel.close(promise: nil)
        }
    }

    /// Bytes from a peer's channel.
    func received(_ bytes: inout ByteBuffer, from key: PeerKey) {
        guard state.value.channels[key] != nil else { return }
        apply { $0.received(&bytes, from: key, now: TorrentRuntime.now()) }
    }

    /// A peer's channel closed.
    func closed(_ key: PeerKey) {
        guard state.value.channels.removeValue(forKey: key) != nil else { return }
        report(.peerCount(state.value.channels.count))
        apply { $0.connectionClosed(key, now: TorrentRuntime.now()) }
    }
}

/// The channel handler of one connection of the magnet phase: hands bytes to the runtime and tells it
/// when the connection ends. (The metadata is small: no back-pressure or buffer pooling is needed here.)
final class MagnetChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let runtime: MagnetRuntime
    private let key: PeerKey

    init(runtime: MagnetRuntime, key: PeerKey) {
        self.runtime = runtime
        self.key = key
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        runtime.received(&bytes, from: key)
    }

    func channelInactive(context: ChannelHandlerContext) {
        runtime.closed(key)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
