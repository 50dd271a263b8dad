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

    /// A peer's channel, and its handler, through which the runtime writes to it.
    struct Connection {
        var channel: any Channel
        var handler: PeerChannelHandler
    }

    struct State {
        var machine: TorrentStateMachine
        var channels: [PeerKey: Connection] = [:]
        var tick: RepeatedTask?
        var stopped = false
        /// Writes, in the order the state machine asked for them.
        var writes = DiskLane()
        /// Hashes of written blocks (in the same order) and of pieces.
        var hashes = DiskLane()
        /// Reads for peers.
        var reads = DiskLane()
        /// Bytes of received blocks queued or being written, plus those queued or being hashed.
        var unwrittenBytes = 0
        /// Reading from peers is paused until the disk catches up.
        var readsPaused = false
        /// A write failed: no write or read runs any more, the pieces whose writes all landed are still
        /// hashed (and verified), then the torrent stops with this error.
        var writeFailure: StorageError?
    }

    /// Received blocks waiting for the disk, in bytes, at which reading from peers pauses (the kernel's socket
    /// buffers and TCP flow control then hold the peers back), and below which it resumes. Bounds memory
    /// whatever the torrent's size or the disk's speed (libtorrent's `max_queued_disk_bytes`).
    /// (Each block counts twice while it waits for both its write and its hash.)
    static let unwrittenHighWater = 16 << 20
    static let unwrittenLowWater = 8 << 20

    public let eventLoop: any EventLoop
    private let threadPool: NIOThreadPool
    private let storage: PieceStorage
    private let hasher: IncrementalPieceHasher
    /// Buffers of the reads lane (which runs one batch at a time, so one batch uses the pool at a time).
    private let readBuffers = ReadBufferPool()
    private let state: NIOLoopBoundBox<State>
    private let report: @Sendable (Report) -> Void

    public init(
        machine: TorrentStateMachine, storage: PieceStorage, group: any EventLoopGroup, threadPool: NIOThreadPool,
        report: @escaping @Sendable (Report) -> Void
    ) {
        self.eventLoop = group.next()
        self.threadPool = threadPool
        self.storage = storage
        self.hasher = IncrementalPieceHasher(storage: storage)
        self.report = report
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(machine: machine), eventLoop: eventLoop)
    }

    /// Read buffers grow to 1 MiB for a fast peer (NIO's default stops at 64 KiB): fewer reads, fewer passes
    /// through the state machine, and fewer messages cut in two by the end of a read (only those are copied).
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 16384, maximum: 1 << 20)

    /// Reads per readable event, which is also how many read buffers a channel keeps for reuse (NIO pools
    /// `maxMessagesPerRead` of them, 4 by default). Received blocks hold their read buffer until they are
    /// written and hashed, up to ``unwrittenHighWater`` of them: with 4 pooled buffers nearly every read
    /// allocated, faulted in and zeroed a fresh megabyte.
    static let receiveBuffersPooled: UInt = 16

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

    /// Peers learnt after the start (from a tracker, the DHT): the state machine dials them as it has room.
    public func addPeers(_ peers: [PeerAddress], source: ConnectionPlanner.Source) {
        eventLoop.execute {
            self.apply { $0.addPeers(peers, source: source, now: Self.now()) }
        }
    }

    /// Closes every connection and stops the clock.
    public func stop() -> EventLoopFuture<Void> {
        eventLoop.submit {
            self.state.value.stopped = true
            self.state.value.tick?.cancel()
            let channels = self.state.value.channels.values.map(\.channel)
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
        // The peer of the last send: a refill's requests, or a block after its header, go to the same peer.
        var sendingTo: (key: PeerKey, handler: PeerChannelHandler)?
        var writes: [DiskJob] = []
        var hashes: [DiskJob] = []
        var reads: [DiskJob] = []
        for action in actions {
            switch action {
            case .connect(let key, let address):
                connect(key, to: address)
            case .send(let key, let bytes):
                if sendingTo?.key != key {
                    guard let handler = state.value.channels[key]?.handler else { continue }
                    sendingTo = (key, handler)
                    flush.insert(key)
                }
                sendingTo?.handler.write(bytes)
            case .close(let key):
                if sendingTo?.key == key { sendingTo = nil }
                state.value.channels.removeValue(forKey: key)?.channel.close(promise: nil)
                report(.peerCount(state.value.channels.count))
            case .ban:
                break
            case .write(let block, let data):
                writes.append(.write(block, data))
                hashes.append(.hashBlock(block, data))
                state.value.unwrittenBytes += 2 * data.readableBytes
            case .read(let key, let block):
                reads.append(.read(key, block))
            case .notifySent(let key, let block):
                guard let handler = state.value.channels[key]?.handler else { continue }
                handler.whenWritten { self.apply { $0.blockSent(block, to: key, now: Self.now()) } }
            case .hash(let piece):
                hashes.append(.hash(piece))
            case .verified(let piece):
                let have = state.value.machine.have
                report(.verified(piece: piece, have: have.setCount, of: have.count))
            case .completed:
                report(.completed)
            }
        }
        for key in flush { state.value.channels[key]?.handler.flush() }
        if !writes.isEmpty { submit(writes, to: .writes) }
        if !hashes.isEmpty { submit(hashes, to: .hashes) }
        if !reads.isEmpty { submit(reads, to: .reads) }
        applyBackpressure()
    }

    /// Pauses reading from every peer while too many received blocks wait for the disk; resumes once
    /// they drain.
    private func applyBackpressure() {
        let unwritten = state.value.unwrittenBytes
        let pause: Bool
        if !state.value.readsPaused && unwritten > Self.unwrittenHighWater {
            pause = true
        } else if state.value.readsPaused && unwritten < Self.unwrittenLowWater {
            pause = false
        } else {
            return
        }
        state.value.readsPaused = pause
        for connection in state.value.channels.values { updateReading(connection.channel) }
    }

    /// Reads from a peer only while the disk keeps up and the peer takes what we send (a peer that does not
    /// read could otherwise make us buffer its answers without bound).
    func updateReading(_ channel: any Channel) {
        eventLoop.preconditionInEventLoop()
        try? channel.syncOptions?.setOption(.autoRead, value: channel.isWritable && !state.value.readsPaused)
    }

    // MARK: - Storage

    /// Queues storage work on a lane; a lane runs one batch at a time on the thread pool, and what queues
    /// meanwhile goes out as the next batch, so a busy disk gets fewer, larger jobs.
    private func submit(_ jobs: [DiskJob], to lane: DiskLane.Name) {
        let idle = withLane(lane) { lane in
            lane.queued += jobs
            return !lane.running
        }
        if idle { runNextBatch(of: lane) }
    }

    private func runNextBatch(of lane: DiskLane.Name) {
        let halted = state.value.stopped || (state.value.writeFailure != nil && lane != .hashes)
        let batch = withLane(lane) { lane -> [DiskJob] in
            let batch = halted ? [] : lane.queued
            lane.queued = []
            lane.running = !batch.isEmpty
            return batch
        }
        guard !batch.isEmpty else { return }
        let hasher = self.hasher
        let readBuffers = self.readBuffers
        let future = threadPool.runIfActive(eventLoop: eventLoop) {
            DiskJob.run(batch, hasher: hasher, readBuffers: readBuffers)
        }
        future.whenComplete { result in
            switch result {
            case .success(let outcome):
                self.finished(outcome.results)
                if let failure = outcome.failure {
                    // A failed write leaves the hashes already due to finish (what was written is kept and
                    // verified); a failed hash or read stops the torrent at once.
                    guard lane == .writes else {
                        self.withLane(lane) { $0.running = false }
                        self.fail(failure)
                        return
                    }
                    if self.state.value.writeFailure == nil { self.state.value.writeFailure = failure }
                }
                self.runNextBatch(of: lane)
                self.failOnceHashesAreDone()
            case .failure(let error):
                self.withLane(lane) { $0.running = false }
                self.fail(error as? StorageError ?? StorageError(code: .ioError, message: "\(error)"))
            }
        }
    }

    /// After a failed write, stops the torrent once the hashes lane has nothing left to do.
    private func failOnceHashesAreDone() {
        guard let failure = state.value.writeFailure, !state.value.hashes.running, state.value.hashes.queued.isEmpty
        else { return }
        fail(failure)
    }

    private func withLane<Result>(_ name: DiskLane.Name, _ body: (inout DiskLane) -> Result) -> Result {
        switch name {
        case .writes: body(&state.value.writes)
        case .hashes: body(&state.value.hashes)
        case .reads: body(&state.value.reads)
        }
    }

    /// Tells the state machine what a batch did, and carries out all it answers at once (one flush per peer).
    private func finished(_ results: [DiskResult]) {
        guard !state.value.stopped else { return }
        let now = Self.now()
        var actions: [TorrentAction] = []
        for result in results {
            switch result {
            case .written(let block):
                state.value.unwrittenBytes -= block.length
                state.value.machine.blockWritten(block, now: now, into: &actions)
            case .blockHashed(let block):
                state.value.unwrittenBytes -= block.length
            case .read(let key, let block, let data):
                state.value.machine.blockRead(block, data: data, for: key, now: now, into: &actions)
            case .hashed(let piece, let digest):
                state.value.machine.pieceHashed(piece, digest: digest, now: now, into: &actions)
            }
        }
        execute(actions)
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
            .channelOption(.recvAllocator, value: Self.receiveAllocator)
            .channelOption(.maxMessagesPerRead, value: Self.receiveBuffersPooled)
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
        let handler = PeerChannelHandler(runtime: self, key: key)
        state.value.channels[key] = Connection(channel: channel, handler: handler)
        if state.value.readsPaused { updateReading(channel) }
        report(.peerCount(state.value.channels.count))
        do {
            try channel.pipeline.syncOperations.addHandler(handler)
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
