import NIOCore
import NIOPosix
import ShoalCore
import ShoalStorage
import ShoalSwarm

/// Runs one ``TorrentStateMachine`` for real: TCP through SwiftNIO, the disk through `PieceStorage` on a
/// thread pool, time from the monotonic clock. All state lives on one event loop; the channel handlers
/// only hand bytes over and the thread pool only hands results back.
public final class TorrentRuntime: Sendable {
    /// What the runtime reports to whoever drives it (the command line, a test).
    public enum Report: Sendable {
        case verified(piece: Int, have: Int, of: Int)
        case completed
        case peerCount(Int)
        case failed(StorageError)
    }

    struct State {
        var machine: TorrentStateMachine
        var channels: [PeerKey: any Channel] = [:]
        var tick: RepeatedTask?
        var stopped = false
    }

    public let eventLoop: any EventLoop
    private let group: any EventLoopGroup
    private let threadPool: NIOThreadPool
    private let storage: PieceStorage
    private let geometry: PieceGeometry
    private let state: NIOLoopBoundBox<State>
    private let report: @Sendable (Report) -> Void

    public init(
        machine: TorrentStateMachine, storage: PieceStorage, group: any EventLoopGroup, threadPool: NIOThreadPool,
        report: @escaping @Sendable (Report) -> Void
    ) {
        self.group = group
        self.eventLoop = group.next()
        self.threadPool = threadPool
        self.storage = storage
        self.geometry = machine.configuration.geometry
        self.report = report
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(machine: machine), eventLoop: eventLoop)
    }

    /// The monotonic clock as the cores count time.
    static func now() -> Instant {
        Instant(nanoseconds: Int64(clamping: NIODeadline.now().uptimeNanoseconds))
    }

    // MARK: - Driving

    /// Starts the clock and dials `peers`.
    public func start(peers: [PeerAddress]) {
        eventLoop.execute {
            let tick = self.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) {
                _ in
                self.apply { $0.tick(now: Self.now()) }
            }
            self.state.value.tick = tick
            self.apply { $0.addPeers(peers, source: .manual, now: Self.now()) }
        }
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

    /// What has moved so far, and with whom.
    public func statistics() -> EventLoopFuture<TorrentStatistics> {
        eventLoop.submit { self.state.value.machine.statistics(now: Self.now()) }
    }

    /// The torrent's verified pieces now.
    public func have() -> EventLoopFuture<Bitfield> {
        eventLoop.submit { self.state.value.machine.have }
    }

    /// Changes the rate limits (bytes of block payload per second; nil: none).
    public func setRateLimits(upload: Int64?, download: Int64?) {
        eventLoop.execute {
            self.apply { $0.setRateLimits(upload: upload, download: download, now: Self.now()) }
        }
    }

    /// Changes which pieces are wanted (one priority per piece).
    public func setPiecePriorities(_ priorities: [PiecePriority]) {
        eventLoop.execute {
            self.apply { $0.setPiecePriorities(priorities, now: Self.now()) }
        }
    }

    /// A connection the listener accepted for this torrent.
    func accepted(_ channel: any Channel) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped, let address = channel.remoteAddress.flatMap(PeerAddress.init(socketAddress:)),
            let key = state.value.machine.accepted(from: address, now: Self.now())
        else {
            channel.close(promise: nil)
            return
        }
        attach(channel, key: key)
    }

    // MARK: - Executing actions

    /// Runs an event on the state machine and carries out what it asks.
    func apply(_ event: (inout TorrentStateMachine) -> [TorrentAction]) {
        eventLoop.preconditionInEventLoop()
        guard !state.value.stopped else { return }
        let actions = event(&state.value.machine)
        execute(actions)
    }

    private func execute(_ actions: [TorrentAction]) {
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
            case .write(let block, let data):
                onPool({ storage in
                    try data.withUnsafeReadableBytes { bytes throws(StorageError) in
                        try storage.write(piece: block.piece, offset: block.offset, bytes: bytes)
                    }
                }) { machine, _ in machine.blockWritten(block, now: Self.now()) }
            case .read(let key, let block):
                onPool({ storage in
                    var buffer = ByteBufferAllocator().buffer(capacity: block.length)
                    try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: block.length) { bytes throws(StorageError) in
                        try storage.read(piece: block.piece, offset: block.offset, length: block.length, into: bytes)
                        return block.length
                    }
                    return buffer
                }) { machine, buffer in machine.blockRead(block, data: buffer, for: key, now: Self.now()) }
            case .hash(let piece):
                onPool({ storage in try storage.hashPiece(piece) }) { machine, digest in
                    machine.pieceHashed(piece, digest: digest, now: Self.now())
                }
            case .verified(let piece):
                let have = state.value.machine.have
                report(.verified(piece: piece, have: have.setCount, of: have.count))
            case .completed:
                report(.completed)
            }
        }
        for key in flush { state.value.channels[key]?.flush() }
    }

    /// Runs storage work on the thread pool and its answer back on the event loop.
    private func onPool<Result: Sendable>(
        _ work: @escaping @Sendable (PieceStorage) throws -> Result,
        then answer: @escaping (inout TorrentStateMachine, Result) -> [TorrentAction]
    ) {
        let storage = self.storage
        let future = threadPool.runIfActive(eventLoop: eventLoop) { () throws -> Result in try work(storage) }
        let answerBox = NIOLoopBound(answer, eventLoop: eventLoop)
        future.whenComplete { result in
            switch result {
            case .success(let value):
                self.apply { answerBox.value(&$0, value) }
            case .failure(let error):
                self.fail(error as? StorageError ?? StorageError(code: .ioError, message: "\(error)"))
            }
        }
    }

    private func fail(_ error: StorageError) {
        guard !state.value.stopped else { return }
        report(.failed(error))
        _ = stop()
    }

    private func connect(_ key: PeerKey, to address: PeerAddress) {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        let future: EventLoopFuture<any Channel>
        do {
            future = bootstrap.connect(to: try address.socketAddress)
        } catch {
            apply { $0.connectionFailed(key, now: Self.now()) }
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
                self.apply { $0.connectionEstablished(key, now: Self.now()) }
            case .failure:
                self.apply { $0.connectionFailed(key, now: Self.now()) }
            }
        }
    }

    private func attach(_ channel: any Channel, key: PeerKey) {
        state.value.channels[key] = channel
        report(.peerCount(state.value.channels.count))
        do {
            try channel.pipeline.syncOperations.addHandler(PeerChannelHandler(runtime: self, key: key))
        } catch {
            channel.close(promise: nil)
        }
    }

    /// Bytes from a peer's channel.
    func received(_ bytes: inout ByteBuffer, from key: PeerKey) {
        guard state.value.channels[key] != nil else { return }
        apply { $0.received(&bytes, from: key, now: Self.now()) }
    }

    /// A peer's channel closed.
    func closed(_ key: PeerKey) {
        guard state.value.channels.removeValue(forKey: key) != nil else { return }
        report(.peerCount(state.value.channels.count))
        apply { $0.connectionClosed(key, now: Self.now()) }
    }
}
