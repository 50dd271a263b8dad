import AsyncHTTPClient
import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker

/// Runs one torrent's ``TrackerClient/StateMachine`` for real: HTTP(S) announces through AsyncHTTPClient,
/// UDP (BEP 15) through a SwiftNIO datagram socket per tracker, host names resolved on a thread pool,
/// timers on one event loop, which owns all the state. Peers and reports go to `onEvent`.
public final class TrackerAnnouncer: Sendable {
    public enum Event: Sendable {
        /// Peers a tracker gave.
        case peers([PeerAddress])
        case report(TrackerClient.Report)
    }

    struct UDPLink {
        var channel: any Channel
        var address: SocketAddress
    }

    struct State {
        var machine: TrackerClient.StateMachine
        var totals: TrackerClient.Totals
        var timer: Scheduled<Void>?
        var links: [Int: UDPLink] = [:]
        /// Trackers whose socket is being made, with the datagrams waiting for it.
        var waiting: [Int: [[UInt8]]] = [:]
        var stopWaiters: [EventLoopPromise<Void>] = []
        var stopped = false
    }

    /// The longest HTTP answer read.
    static let maxBody = 1 << 20
    /// Time an HTTP announce may take.
    static let httpTimeout = TimeAmount.seconds(30)

    public let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    private let httpClient: HTTPClient
    private let threadPool: NIOThreadPool
    private let onEvent: @Sendable (Event) -> Void

    /// `httpClient` and `threadPool` stay the caller's to shut down (after ``stop(totals:)``).
    public init(
        machine: TrackerClient.StateMachine, totals: TrackerClient.Totals, group: any EventLoopGroup,
        httpClient: HTTPClient, threadPool: NIOThreadPool, onEvent: @escaping @Sendable (Event) -> Void
    ) {
        eventLoop = group.next()
        state = NIOLoopBoundBox.makeBoxSendingValue(State(machine: machine, totals: totals), eventLoop: eventLoop)
        self.httpClient = httpClient
        self.threadPool = threadPool
        self.onEvent = onEvent
    }

    /// The clock the announcer runs on (for showing when a retry is due).
    public static func now() -> Instant { TrackerClock.now() }

    /// Sends `started` to every tier.
    public func start() {
        eventLoop.execute { self.apply { $0.start(now: TrackerClock.now(), totals: $1) } }
    }

    /// What the torrent has moved so far, for the next announces.
    public func update(totals: TrackerClient.Totals) {
        eventLoop.execute { self.state.value.totals = totals }
    }

    /// The download completed: `completed` goes out now.
    public func completed(totals: TrackerClient.Totals) {
        eventLoop.execute {
            self.state.value.totals = totals
            self.apply { machine, _ in machine.completed(now: TrackerClock.now(), totals: totals) }
        }
    }

    /// Re-announces as soon as `min interval` allows, for more peers.
    public func requestPeers() {
        eventLoop.execute { self.apply { $0.requestPeers(now: TrackerClock.now(), totals: $1) } }
    }

    /// Sends `stopped` to every tracker that heard `started` and waits until they answered, failed, or the
    /// core's stop timeout passed; then closes the sockets.
    public func stop(totals: TrackerClient.Totals) async {
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute {
            self.state.value.totals = totals
            self.state.value.stopWaiters.append(promise)
            if self.state.value.stopped || self.state.value.machine.isStopped {
                self.finishStop()
            } else {
                self.apply { machine, _ in machine.stop(now: TrackerClock.now(), totals: totals) }
            }
        }
        try? await promise.futureResult.get()
    }

    // MARK: - Executing actions

    /// Runs an event on the state machine (given the current totals) and carries out what it asks.
    private func apply(_ event: (inout TrackerClient.StateMachine, TrackerClient.Totals) -> [TrackerClient.Action]) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped else { return }
        let totals = state.value.totals
        let actions = event(&state.value.machine, totals)
        for action in actions {
            switch action {
            case .sendHTTP(let id, _, let url):
                sendHTTP(id, url: url)
            case .sendUDP(let tracker, let host, let port, let datagram):
                sendUDP(tracker, host: host, port: port, datagram: datagram)
            case .peers(let peers, _):
                onEvent(.peers(peers))
            case .report(let report):
                onEvent(.report(report))
                if case .stopped = report { finishStop() }
            }
        }
        reschedule()
    }

    private func reschedule() {
        state.value.timer?.cancel()
        state.value.timer = nil
        guard !state.value.stopped, let deadline = state.value.machine.nextDeadline else { return }
        state.value.timer = eventLoop.scheduleTask(deadline: TrackerClock.deadline(deadline)) {
            self.state.value.timer = nil
            self.apply { $0.timerFired(now: TrackerClock.now(), totals: $1) }
        }
    }

    private func finishStop() {
        state.value.stopped = true
        state.value.timer?.cancel()
        state.value.timer = nil
        for link in state.value.links.values { link.channel.close(promise: nil) }
        state.value.links = [:]
        let waiters = state.value.stopWaiters
        state.value.stopWaiters = []
        for waiter in waiters { waiter.succeed() }
    }

    // MARK: - HTTP

    private func sendHTTP(_ id: TrackerClient.RequestID, url: String) {
        let client = httpClient
        Task {
            let outcome: Result<[UInt8], any Error>
            do {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "User-Agent", value: "Shoal/\(ShoalVersion.string)")
                let response = try await client.execute(request, timeout: Self.httpTimeout)
                guard response.status == .ok else { throw TrackerServerError(message: "HTTP status \(response.status.code) \(response.status.reasonPhrase)") }
                var body = try await response.body.collect(upTo: Self.maxBody)
                outcome = .success(body.readBytes(length: body.readableBytes) ?? [])
            } catch {
                outcome = .failure(error)
            }
            self.eventLoop.execute {
                switch outcome {
                case .success(let body):
                    self.apply { $0.httpResponse(id, body: body, now: TrackerClock.now(), totals: $1) }
                case .failure(let error):
                    self.apply { $0.httpFailed(id, reason: Self.describe(error), now: TrackerClock.now(), totals: $1) }
                }
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "HTTP: \(error)" }
        return String(describing: error)
    }

    // MARK: - UDP

    private func sendUDP(_ tracker: Int, host: String, port: Int, datagram: [UInt8]) {
        if let link = state.value.links[tracker] {
            write(datagram, to: link)
            return
        }
        guard state.value.waiting[tracker] == nil else {
            state.value.waiting[tracker]?.append(datagram)
            return
        }
        state.value.waiting[tracker] = [datagram]
        let resolved = threadPool.runIfActive(eventLoop: eventLoop) {
            try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
        resolved.flatMap { address in
            DatagramBootstrap(group: self.eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPTrackerClientHandler(announcer: self, tracker: tracker, address: address))
                    }
                }
                .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
                .map { UDPLink(channel: $0, address: address) }
        }.whenComplete { result in
            let waiting = self.state.value.waiting.removeValue(forKey: tracker) ?? []
            switch result {
            case .success(let link):
                guard !self.state.value.stopped else {
                    link.channel.close(promise: nil)
                    return
                }
                self.state.value.links[tracker] = link
                for datagram in waiting { self.write(datagram, to: link) }
            case .failure(let error):
                self.apply {
                    $0.udpFailed(tracker: tracker, reason: "cannot reach \(host):\(port): \(error)", now: TrackerClock.now(), totals: $1)
                }
            }
        }
    }

    private func write(_ datagram: [UInt8], to link: UDPLink) {
        let buffer = link.channel.allocator.buffer(bytes: datagram)
        link.channel.writeAndFlush(AddressedEnvelope(remoteAddress: link.address, data: buffer), promise: nil)
    }

    /// A datagram from a tracker's address (on the event loop).
    func received(_ datagram: [UInt8], from tracker: Int, ipv6: Bool) {
        apply { $0.udpReceived(tracker: tracker, datagram: datagram, ipv6: ipv6, now: TrackerClock.now(), totals: $1) }
    }
}

/// One UDP tracker's socket: hands the datagrams that come from the tracker's address to the announcer.
final class UDPTrackerClientHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let announcer: TrackerAnnouncer
    private let tracker: Int
    private let address: SocketAddress

    init(announcer: TrackerAnnouncer, tracker: Int, address: SocketAddress) {
        self.announcer = announcer
        self.tracker = tracker
        self.address = address
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var envelope = unwrapInboundIn(data)
        // Only the tracker's own address (and port) may answer.
        guard envelope.remoteAddress == address, envelope.data.readableBytes <= 65_536,
            let bytes = envelope.data.readBytes(length: envelope.data.readableBytes)
        else { return }
        announcer.received(bytes, from: tracker, ipv6: address.protocol == .inet6)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like: the core's timeouts deal with a silent tracker.
    }
}
