import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker
import Synchronization

/// The UDP side of the load: per source socket, a connect, then announces kept `window` in flight (a new
/// one for each answer); lost packets are replaced after 200 ms without answers; a new connection id every
/// 50 s. In `distinct` mode each peer is announced once, until every one was answered.
enum UDPLoad {
    struct Result {
        var sent = 0
        var answered = 0
        var errors = 0
        var connects = 0
        var seconds = 0.0
    }

    static func run(
        host: String, port: Int, seconds: Double, distinct: Int?, hashes: [Bytes20], seed: UInt64, window: Int, sources: Int
    ) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let target = try SocketAddress(ipAddress: host, port: port)
        let shared = Shared(distinct: distinct)
        var channels: [any Channel] = []
        for source in 0..<sources {
            let local = host == "::1" ? "::1" : "127.0.0.\(source + 1)"
            let handler = LoadHandler(
                target: target, hashes: hashes, seed: seed &+ UInt64(source) &* 7919, window: window, source: source,
                sources: sources, shared: shared)
            let channel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
                .channelOption(.datagramVectorReadMessageCount, value: 64)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 1536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                }
                .bind(host: local, port: 0).get()
            channels.append(channel)
        }
        let start = NIODeadline.now()
        let deadline = start + .nanoseconds(Int64(seconds * 1e9))
        while NIODeadline.now() < deadline && !shared.done {
            try await Task.sleep(for: .milliseconds(50))
        }
        shared.stop()
        let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        for channel in channels { try? await channel.close() }
        try? await group.shutdownGracefully()
        var result = shared.result
        result.seconds = elapsed
        return result
    }

    /// Counts of all sockets (atomically enough: one event loop).
    final class Shared: Sendable {
        private let state: Mutex<(result: Result, stopped: Bool, given: Int, answered: Int)>
        let distinct: Int?

        init(distinct: Int?) {
            self.distinct = distinct
            state = Mutex((Result(), false, 0, 0))
        }

        var result: Result { state.withLock { $0.result } }
        var stopped: Bool { state.withLock { $0.stopped } }
        var done: Bool {
            state.withLock { state in state.stopped || (distinct.map { state.answered >= $0 } ?? false) }
        }
        func stop() { state.withLock { $0.stopped = true } }
        func add(sent: Int = 0, answered: Int = 0, errors: Int = 0, connects: Int = 0) {
            state.withLock {
                $0.result.sent += sent
                $0.result.answered += answered
                $0.result.errors += errors
                $0.result.connects += connects
                $0.answered += answered
            }
        }
    }
}

/// One source socket's announces.
final class LoadHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: touched only on its channel's event loop.
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let target: SocketAddress
    let hashes: [Bytes20]
    let window: Int
    let source: Int
    let sources: Int
    let shared: UDPLoad.Shared
    var random: SplitMix64
    var connectionID: UInt64?
    var connectedAt = NIODeadline.now()
    var inFlight = 0
    var lastAnswer = NIODeadline.now()
    var timer: RepeatedTask?
    var packet: [UInt8] = []
    /// Distinct mode: the next peer this socket announces (socket `source` takes every `sources`-th), and the
    /// announces not answered yet (transaction id → peer), sent again when answers stop.
    var nextPeer: Int
    var unanswered: [UInt32: Int] = [:]

    init(target: SocketAddress, hashes: [Bytes20], seed: UInt64, window: Int, source: Int, sources: Int, shared: UDPLoad.Shared) {
        self.target = target
        self.hashes = hashes
        self.window = window
        self.source = source
        self.sources = sources
        self.shared = shared
        random = SplitMix64(seed: seed)
        nextPeer = source
        packet.reserveCapacity(128)
    }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context: context)
        }
        connect(context: context)
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    private func connect(context: ChannelHandlerContext) {
        connectionID = nil
        packet.removeAll(keepingCapacity: true)
        UDPTrackerRequest.connect(transactionID: UInt32(truncatingIfNeeded: random.next())).encode(into: &packet)
        send(context: context)
    }

    private func send(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(bytes: packet)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: buffer)), promise: nil)
    }

    /// Sends announces until `window` are in flight.
    private func fill(context: ChannelHandlerContext) {
        guard connectionID != nil, !shared.stopped else { return }
        var sent = 0
        while inFlight < window {
            if let distinct = shared.distinct {
                guard nextPeer < distinct else { break }
                unanswered[UInt32(truncatingIfNeeded: nextPeer)] = nextPeer
                announce(peer: nextPeer, context: context)
                nextPeer += sources
            } else {
                announce(peer: nil, context: context)
            }
            inFlight += 1
            sent += 1
        }
        if sent > 0 { shared.add(sent: sent) }
    }

    /// One announce: of peer `peer` (distinct mode: info-hash n mod H, the port from the rest, so every
    /// (address, port, info-hash) differs; its transaction id is n), or of a random peer.
    private func announce(peer: Int?, context: ChannelHandlerContext) {
        guard let connectionID else { return }
        let hash: Bytes20
        let port: UInt16
        let transactionID: UInt32
        if let peer {
            hash = hashes[peer % hashes.count]
            port = UInt16(1 + (peer / hashes.count / sources) % 65_535)
            transactionID = UInt32(truncatingIfNeeded: peer)
        } else {
            hash = hashes[random.next(upTo: hashes.count)]
            port = UInt16(1 + random.next(upTo: 65_000))
            transactionID = UInt32(truncatingIfNeeded: random.next())
        }
        let announce = UDPAnnounce(
            infoHash: hash, peerID: TrackerLoad.randomID(&random), downloaded: 0, left: random.next(upTo: 3) == 0 ? 0 : 1000,
            uploaded: 0, event: .started, key: UInt32(truncatingIfNeeded: random.next()), numWant: TrackerLoad.numWant, port: port)
        packet.removeAll(keepingCapacity: true)
        UDPTrackerRequest.announce(connectionID: connectionID, transactionID: transactionID, announce).encode(into: &packet)
        send(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.data.readableBytes >= 8 else { return }
        let action = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt32.self) ?? 9
        lastAnswer = NIODeadline.now()
        switch action {
        case 0:
            guard envelope.data.readableBytes >= 16 else { return }
            connectionID = envelope.data.getInteger(at: envelope.data.readerIndex + 8, as: UInt64.self)
            connectedAt = NIODeadline.now()
            inFlight = 0
            shared.add(connects: 1)
        case 1:
            inFlight = max(inFlight - 1, 0)
            if shared.distinct != nil {
                let transactionID = envelope.data.getInteger(at: envelope.data.readerIndex + 4, as: UInt32.self) ?? 0
                guard unanswered.removeValue(forKey: transactionID) != nil else { return }
            }
            shared.add(answered: 1)
        default:
            inFlight = max(inFlight - 1, 0)
            shared.add(errors: 1)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if connectionID != nil && NIODeadline.now() - connectedAt > .seconds(50) {
            connect(context: context)
        } else {
            fill(context: context)
        }
        context.flush()
    }

    /// Lost packets (a full socket buffer): after 200 ms without answers, the window is sent again.
    private func tick(context: ChannelHandlerContext) {
        guard !shared.stopped, NIODeadline.now() - lastAnswer > .milliseconds(200) else { return }
        if connectionID == nil {
            connect(context: context)
        } else if !unanswered.isEmpty {
            for peer in unanswered.values { announce(peer: peer, context: context) }
            inFlight = unanswered.count
        } else {
            inFlight = 0
            fill(context: context)
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
