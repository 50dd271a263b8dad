import DequeModule
import NIOCore
import ShoalCore
import ShoalSwarm
import ShoalWire

/// The simulator runtime: many real ``TorrentStateMachine``s, one per simulated peer, run in virtual time
/// over a simulated network and simulated disks. It carries out exactly the actions the NIO runtime
/// carries out (connect, send, close, write, read, hash), as events in an ``EventQueue``; a run depends
/// only on its seed, so it repeats exactly.
///
/// The network: each peer has an access link (``SimLink``). A peer's upload is shared equally among its
/// connections that have bytes to send (processor sharing, one chunk of at most a block message per
/// connection at a time), so connections get fair shares and rates, and with them choking, behave as on
/// a real network; a chunk then crosses both links' latency and the receiver's download link, and arrives
/// in order.
///
/// Nodes touch each other only through messages that cross the network (a chunk, a dial and its answer, a
/// close, the directory's questions and answers), each at least the two shortest access links' latency
/// away. So ``Configuration/partitions`` workers can each run their share of the nodes (node `i` belongs
/// to worker `i % partitions`) through a window of that length at the same time, and trade the messages
/// that cross between them at the window's end; events are ordered by (time, the node that caused them,
/// that node's count), so a run gives the same result on one core or several.
///
/// Not thread-safe: call it from one thread at a time (its workers run on threads of their own in a run).
public final class Simulation {
    public struct Configuration {
        /// Everything random in a run (peer ids, the engines' seeds, the directory's samples, loss and
        /// jitter) comes from this.
        public var seed: UInt64
        /// The least time between two ticks of a peer's engine (the NIO runtime ticks every 250 ms). A peer is
        /// ticked when its engine next has something due (a timer, the rechoke, a dial), no sooner.
        public var tickInterval: Interval
        public var hashing: SimStorage.Hashing
        /// Time a disk takes for a batch of writes, reads or hashes.
        public var diskLatency: Interval
        /// Addresses the directory gives a peer when it joins and at each re-announce.
        public var announceWant: Int
        /// How often peers ask the directory again (nil: only when they join).
        public var reannounceInterval: Interval?
        /// What a lost chunk costs before it arrives (TCP's retransmission timeout).
        public var retransmissionTimeout: Interval
        /// Bytes a link sends for one connection before it turns to the next one.
        public var chunkSize: Int
        /// Messages up to this size, sent while their connection has nothing waiting, skip the upload
        /// link's sharing (0: every byte shares the link).
        public var controlMessageLimit: Int
        /// Workers that run the nodes, each on a thread of its own, in windows of the least one-way delay
        /// between two nodes. Results do not depend on it. With links of no latency there is no window,
        /// and the workers take turns on one thread.
        public var partitions: Int

        public init(
            seed: UInt64, tickInterval: Interval = .milliseconds(250), hashing: SimStorage.Hashing = .shortcut,
            diskLatency: Interval = .zero, announceWant: Int = 50, reannounceInterval: Interval? = .seconds(1800),
            retransmissionTimeout: Interval = .milliseconds(200), chunkSize: Int = PieceGeometry.blockLength + 13,
            controlMessageLimit: Int = 64, partitions: Int = 1
        ) {
            self.seed = seed
            self.tickInterval = tickInterval
            self.hashing = hashing
            self.diskLatency = diskLatency
            self.announceWant = announceWant
            self.reannounceInterval = reannounceInterval
            self.retransmissionTimeout = retransmissionTimeout
            self.chunkSize = chunkSize
            self.controlMessageLimit = controlMessageLimit
            self.partitions = partitions
        }
    }

    enum Event {
        case join(node: Int)
        case leave(node: Int)
        case announce(node: Int)
        /// The directory's answer reaches the node.
        case found(node: Int, peers: [Int])
        case tick(node: Int)
        /// A node's upload link finished sending a chunk (if `version` is still current).
        case uplinkDone(node: Int, version: UInt64)
        /// The bytes written to a peer before a block's `notifySent` have left the node.
        case sent(node: Int, key: PeerKey, Block)
        /// A chunk reaches the end `key` of `node`: it reached the node's download link at `arrival`, and has
        /// been through it if `queued` (it waited behind others).
        case deliver(node: Int, key: PeerKey, Chunk, arrival: Instant, queued: Bool)
        /// A dial from the end `key` of node `from` reaches `node`.
        case arrive(node: Int, from: Int, key: PeerKey, address: PeerAddress)
        /// The dialling end learns its dial was answered by `peerKey` of `peer` (nil: accepted by the
        /// kernel and closed at once by the engine).
        case established(node: Int, key: PeerKey, peer: Int, peerKey: PeerKey?)
        /// The dialling node learns its dial failed.
        case refused(node: Int, key: PeerKey)
        /// An end learns that the other closed.
        case closed(node: Int, key: PeerKey)
        case disk(node: Int, [DiskResult])
        /// The directory lists a node, forgets it, or is asked for others by it.
        case listed(node: Int)
        case unlisted(node: Int)
        case lookup(node: Int)
        case call(Int)

        /// The node this event happens at (negative: the directory and scenario calls, run by the simulation).
        var node: Int {
            switch self {
            case .join(let node), .leave(let node), .announce(let node), .found(let node, _), .tick(let node),
                .uplinkDone(let node, _), .sent(let node, _, _), .deliver(let node, _, _, _, _), .arrive(let node, _, _, _),
                .established(let node, _, _, _), .refused(let node, _), .closed(let node, _), .disk(let node, _):
                return node
            case .listed, .unlisted, .lookup: return Simulation.directoryOrigin
            case .call: return Simulation.callOrigin
            }
        }
    }

    typealias Entry = EventQueue<Event>.Entry

    /// Origins of events the simulation causes itself (before every node's at the same instant).
    static let callOrigin = -2
    static let directoryOrigin = -1

    enum DiskResult {
        case written(Block)
        case hashed(piece: Int, Digest20)
        case read(PeerKey, Block, ByteBuffer)
    }

    /// One simulated peer. A class: every event reads or changes a node, and a struct in the array was copied
    /// (its engine with every queue retained, then released) by reads through the simulation's property.
    final class Node {
        let address: PeerAddress
        let link: SimLink
        var machine: TorrentStateMachine
        var storage: SimStorage
        let spec: SimPeerSpec
        var online = false
        /// Its end of each connection, by the number of the engine's key for it (an engine numbers its peers
        /// from 1 up and does not reuse a number): an array, since every message sent looks one up.
        var ends: [End?] = []
        /// What the upload link is sending: one chunk per connection end with bytes to send, all at once,
        /// each at an equal share of the link (processor sharing, as TCP flows sharing a bottleneck).
        var flows: [Flow] = []
        var flowsUpdatedAt = Instant.zero
        /// Tells the current `uplinkDone` event from stale ones.
        var uplinkVersion: UInt64 = 0
        /// When the download link has taken in everything that reached it so far.
        var downlinkFreeAt = Instant.zero
        /// The one tick scheduled for this node (ticks at other times are stale).
        var nextTick: Instant?
        var report = SimPeerReport()
        var nextPort: UInt16 = 49152
        /// Events this node caused so far (their count in the order of events).
        var caused: UInt64 = 0
        /// The node's own random numbers (jitter and loss on what it sends).
        var random: SplitMix64

        init(
            address: PeerAddress, link: SimLink, machine: TorrentStateMachine, storage: SimStorage, spec: SimPeerSpec,
            random: SplitMix64
        ) {
            self.address = address
            self.link = link
            self.machine = machine
            self.storage = storage
            self.spec = spec
            self.random = random
        }

        /// When the engine next wants a tick (read in place: the engine's query is `mutating` for that).
        func nextTickDeadline(now: Instant) -> Instant? {
            machine.nextTickDeadline(now: now)
        }

        /// The node's end of the connection its engine calls `key`.
        func end(of key: PeerKey) -> End? {
            ends.indices.contains(key.rawValue) ? ends[key.rawValue] : nil
        }

        func setEnd(_ end: End?, of key: PeerKey) {
            guard key.rawValue >= 0 else { return }
            if key.rawValue >= ends.count {
                guard end != nil else { return }
                ends.append(contentsOf: repeatElement(nil, count: key.rawValue + 1 - ends.count))
            }
            ends[key.rawValue] = end
        }
    }

    /// A node's end of a TCP connection. It knows the other end only as (node, key): what it sends there
    /// is a message, so that each end is read and changed by its own node alone.
    final class End {
        let key: PeerKey
        /// The node at the other end, and its key for the connection (the dialler learns it when the dial
        /// is answered).
        let peer: Int
        var peerKey: PeerKey?
        var open = true
        /// Bytes this end has written and its link has not yet sent.
        var outbound: Deque<ByteBuffer> = []
        /// A chunk of this end is on the node's upload link.
        var sending = false
        /// Bytes the engine wrote to this end, and bytes of them that left the node's link.
        var writtenBytes: Int64 = 0
        var leftBytes: Int64 = 0
        /// Blocks whose engine asked to know when the bytes written before them (`writtenBytes` then) left.
        var sentMarkers: Deque<(bytes: Int64, block: Block)> = []
        /// When the last chunk or notice sent to the other end is due there (they arrive in order).
        var lastDue = Instant.zero
        /// Chunks for this end waiting behind the download link, and when the last of them is delivered.
        var queued = 0
        var lastDelivery = Instant.zero

        init(key: PeerKey, peer: Int, peerKey: PeerKey?) {
            self.key = key
            self.peer = peer
            self.peerKey = peerKey
        }
    }

    /// Bytes that cross a link together: buffers as the engine wrote them, never joined (joining copied every
    /// block behind its 13-byte head); the receiving engine takes them one after the other.
    struct Chunk {
        var first: ByteBuffer
        /// Empty for most chunks (no allocation).
        var rest: [ByteBuffer] = []

        var readableBytes: Int { rest.reduce(first.readableBytes) { $0 + $1.readableBytes } }
    }

    /// A chunk on its way out of a node's upload link.
    struct Flow {
        var end: End
        var chunk: Chunk
        /// Bytes still to send.
        var remaining: Double
    }

    public let configuration: Configuration
    public let content: SimContent
    public internal(set) var now = Instant.zero
    /// Events taken so far, by every worker.
    public var eventsProcessed: Int { workers.reduce(controlProcessed) { $0 + $1.eventsProcessed } }
    var controlProcessed = 0
    let workers: [SimWorker]
    /// The scenario's calls, and the directory's events, which the simulation runs itself.
    var callQueue = EventQueue<Event>()
    var directoryQueue = EventQueue<Event>()
    /// Events the directory and calls caused so far.
    var directoryCaused: UInt64 = 0
    var callsCaused: UInt64 = 0
    var nodes: [Node] = []
    var directory = SimDirectory()
    var directoryRandom: SplitMix64
    var random: SplitMix64
    var calls: [Int: (Simulation) -> Void] = [:]
    var nextCall = 0
    /// The least one-way latency of any node's link: two nodes are at least twice that apart.
    var leastLatency: Interval?
    /// Peers that finished (every wanted piece verified).
    public var finishedCount: Int { workers.reduce(0) { $0 + $1.finishedCount } }

    public init(content: SimContent, configuration: Configuration) {
        self.content = content
        self.configuration = configuration
        self.random = SplitMix64(seed: configuration.seed)
        self.directoryRandom = SplitMix64(seed: configuration.seed ^ 0x6469_7265_6374_6f72)
        let partitions = max(1, configuration.partitions)
        // Each worker has the content to itself: a block read is a slice of the content's buffer, and
        // workers retaining and releasing one shared buffer would fight over its reference count.
        self.workers = (0..<partitions).map { index in
            SimWorker(
                index: index, partitions: partitions, configuration: configuration,
                content: index == 0 ? content : SimContent(copying: content))
        }
        for _ in 0..<2 {
            let boxes = (0..<partitions).map { _ in (0..<partitions).map { _ in SimWorker.Mailbox() } }
            for worker in workers {
                worker.outgoing.append((0..<partitions).map { boxes[worker.index][$0] })
                worker.incoming.append((0..<partitions).map { boxes[$0][worker.index] })
            }
        }
    }

    // MARK: - Building the swarm

    /// Adds a peer that joins at `time` (now if earlier).
    @discardableResult
    public func addPeer(_ spec: SimPeerSpec, at time: Instant? = nil) -> SimPeerID {
        let index = nodes.count
        let worker = workers[index % workers.count]
        let address = Self.address(ofNode: index)
        var configuration = TorrentStateMachine.Configuration(
            infoHash: content.infoHash, peerID: PeerID.shoal(using: &random), geometry: content.geometry,
            pieceHashes: worker.content.pieceHashes, seed: random.next())
        spec.configure(&configuration)
        let have = Bitfield(count: content.geometry.pieceCount, allSet: spec.isSeed)
        var storage = SimStorage(content: worker.content, hashing: self.configuration.hashing)
        storage.corruptsReads = spec.corruptsUploads
        let node = Node(
            address: address, link: spec.link, machine: TorrentStateMachine(configuration: configuration, have: have),
            storage: storage, spec: spec, random: SplitMix64(seed: random.next()))
        nodes.append(node)
        for worker in workers {
            worker.nodes.append(node)
            worker.links.append(spec.link)
        }
        leastLatency = min(leastLatency ?? spec.link.latency, spec.link.latency)
        scheduleFromCall(.join(node: index), at: max(time ?? now, now))
        return SimPeerID(index)
    }

    /// Takes a peer out of the swarm at `time`: its connections close, it is no longer listed.
    public func removePeer(_ peer: SimPeerID, at time: Instant? = nil) {
        scheduleFromCall(.leave(node: peer.index), at: max(time ?? now, now))
    }

    /// Runs `body` at `time` (for scenarios: churn, measurements), before any node's event of that instant.
    public func schedule(at time: Instant, _ body: @escaping (Simulation) -> Void) {
        calls[nextCall] = body
        scheduleFromCall(.call(nextCall), at: max(time, now))
        nextCall += 1
    }

    /// Schedules an event the scenario (setup or a call) causes.
    private func scheduleFromCall(_ event: Event, at time: Instant) {
        let entry = Entry(time: time, origin: Self.callOrigin, count: callsCaused, event: event)
        callsCaused &+= 1
        deliver(entry)
    }

    /// Puts an event into the queue of whoever runs it.
    func deliver(_ entry: Entry) {
        let node = entry.event.node
        if node == Self.callOrigin {
            callQueue.insert(entry)
        } else if node == Self.directoryOrigin {
            directoryQueue.insert(entry)
        } else {
            workers[node % workers.count].queue.insert(entry)
        }
    }

    /// The address of the node with this index: 10.x.y.z, port 6881 (one host per peer, so a ban of one
    /// peer's address bans nobody else).
    static func address(ofNode index: Int) -> PeerAddress {
        PeerAddress(host: .ipv4(0x0A00_0000 + UInt32(index + 1)), port: 6881)
    }

    /// The index of the node listening at `address` (the inverse of ``address(ofNode:)``), if it is one of
    /// the first `count`.
    static func node(at address: PeerAddress, count: Int) -> Int? {
        guard address.port == 6881, case .ipv4(let host) = address.host, host > 0x0A00_0000 else { return nil }
        let index = Int(host - 0x0A00_0001)
        return index < count ? index : nil
    }

    // MARK: - Observing

    /// What happened to a peer so far.
    public func report(_ peer: SimPeerID) -> SimPeerReport {
        var report = nodes[peer.index].report
        report.piecesVerified = nodes[peer.index].machine.have.setCount
        report.isOnline = nodes[peer.index].online
        return report
    }

    /// The peer's engine, as it stands (for its statistics and pieces).
    public func machine(_ peer: SimPeerID) -> TorrentStateMachine { nodes[peer.index].machine }

    /// SHA-1 computations a peer's disk made.
    public func hashesComputed(_ peer: SimPeerID) -> Int { nodes[peer.index].storage.hashesComputed }

    public var peerCount: Int { nodes.count }
    public var onlineCount: Int { nodes.lazy.filter(\.online).count }

    /// Over the peers online, the number that have the piece held by the fewest of them.
    public func minimumReplication() -> Int {
        var counts = [Int](repeating: 0, count: content.geometry.pieceCount)
        for node in nodes where node.online {
            let have = node.machine.have
            if have.isComplete {
                for piece in counts.indices { counts[piece] += 1 }
            } else {
                for piece in have.setIndices { counts[piece] += 1 }
            }
        }
        return counts.min() ?? 0
    }
}
