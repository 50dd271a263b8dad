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
/// a real network; a chunk then crosses both links' latency and the receiver's download link (first come,
/// first served) and arrives in order.
///
/// Not thread-safe: one simulation runs on one thread (run several simulations in parallel instead).
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

        public init(
            seed: UInt64, tickInterval: Interval = .milliseconds(250), hashing: SimStorage.Hashing = .shortcut,
            diskLatency: Interval = .zero, announceWant: Int = 50, reannounceInterval: Interval? = .seconds(1800),
            retransmissionTimeout: Interval = .milliseconds(200), chunkSize: Int = PieceGeometry.blockLength + 13,
            controlMessageLimit: Int = 64
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
        }
    }

    enum Event {
        case join(node: Int)
        case leave(node: Int)
        case announce(node: Int)
        case tick(node: Int)
        /// A node's upload link finished sending a chunk (if `version` is still current).
        case uplinkDone(node: Int, version: UInt64)
        /// The bytes written to a peer before a block's `notifySent` have left the node.
        case sent(node: Int, key: PeerKey, Block)
        /// A chunk reaches one end of a connection.
        case deliver(connection: Int, side: Int, Chunk)
        /// A dial reaches the listening node.
        case arrive(connection: Int)
        /// The dialling node learns its dial was answered.
        case established(connection: Int)
        /// The dialling node learns its dial failed.
        case refused(node: Int, key: PeerKey)
        /// One end learns that the other closed.
        case closed(connection: Int, side: Int)
        case disk(node: Int, [DiskResult])
        case call(Int)
    }

    enum DiskResult {
        case written(Block)
        case hashed(piece: Int, Digest20)
        case read(PeerKey, Block, ByteBuffer)
    }

    /// One simulated peer. A class: every event reads or changes a node, and a struct in the array was copied
    /// (its engine with every queue retained, then released) by reads through the simulation's property.
    final class Node {
        let address: PeerAddress
        var link: SimLink
        var machine: TorrentStateMachine
        var storage: SimStorage
        var spec: SimPeerSpec
        var online = false
        /// Its end of the connection each of its engine's keys names, by the key's number (an engine numbers
        /// its peers from 1 up): an array, since every message sent looks one up.
        var ends: [ConnectionEnd?] = []
        /// What the upload link is sending: one chunk per connection end with bytes to send, all at once,
        /// each at an equal share of the link (processor sharing, as TCP flows sharing a bottleneck).
        var flows: [Flow] = []
        var flowsUpdatedAt = Instant.zero
        /// Tells the current `uplinkDone` event from stale ones.
        var uplinkVersion: UInt64 = 0
        var downlinkFreeAt = Instant.zero
        /// The one tick scheduled for this node (ticks at other times are stale).
        var nextTick: Instant?
        var report = SimPeerReport()
        var nextPort: UInt16 = 49152

        init(address: PeerAddress, link: SimLink, machine: TorrentStateMachine, storage: SimStorage, spec: SimPeerSpec) {
            self.address = address
            self.link = link
            self.machine = machine
            self.storage = storage
            self.spec = spec
        }

        /// When the engine next wants a tick (read in place: the engine's query is `mutating` for that).
        func nextTickDeadline(now: Instant) -> Instant? {
            machine.nextTickDeadline(now: now)
        }

        /// The node's end of the connection its engine calls `key`.
        func end(of key: PeerKey) -> ConnectionEnd? {
            ends.indices.contains(key.rawValue) ? ends[key.rawValue] : nil
        }

        func setEnd(_ end: ConnectionEnd?, of key: PeerKey) {
            guard key.rawValue >= 0 else { return }
            if key.rawValue >= ends.count {
                guard end != nil else { return }
                ends.append(contentsOf: repeatElement(nil, count: key.rawValue + 1 - ends.count))
            }
            ends[key.rawValue] = end
        }
    }

    struct ConnectionEnd: Hashable {
        var connection: Int
        var side: Int
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
        var end: ConnectionEnd
        var chunk: Chunk
        /// Bytes still to send.
        var remaining: Double
    }

    /// A TCP connection: side 0 dialled, side 1 accepted. Classes, as ``Node``: every message reads an end.
    final class Connection {
        final class End {
            let node: Int
            var key: PeerKey?
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
            /// When the last chunk for this end was delivered (chunks arrive in order).
            var lastDelivery = Instant.zero
            /// The address the other end sees for this one.
            let address: PeerAddress

            init(node: Int, key: PeerKey?, address: PeerAddress) {
                self.node = node
                self.key = key
                self.address = address
            }
        }
        let dialler: End
        let listener: End

        init(dialler: End, listener: End) {
            self.dialler = dialler
            self.listener = listener
        }

        /// Side 0 is the dialler, side 1 the listener.
        subscript(side: Int) -> End { side == 0 ? dialler : listener }
    }

    public let configuration: Configuration
    public let content: SimContent
    public internal(set) var now = Instant.zero
    public private(set) var eventsProcessed = 0
    var queue = EventQueue<Event>()
    var nodes: [Node] = []
    var nodeByAddress: [PeerAddress: Int] = [:]
    /// Every connection by its number, nil once both ends closed (an array: every message looks one up).
    var connections: [Connection?] = []
    var directory = SimDirectory()
    var random: SplitMix64
    var calls: [Int: (Simulation) -> Void] = [:]
    var nextCall = 0
    /// Peers that finished (every wanted piece verified) and how many there are.
    public internal(set) var finishedCount = 0

    public init(content: SimContent, configuration: Configuration) {
        self.content = content
        self.configuration = configuration
        self.random = SplitMix64(seed: configuration.seed)
    }

    // MARK: - Building the swarm

    /// Adds a peer that joins at `time` (now if earlier).
    @discardableResult
    public func addPeer(_ spec: SimPeerSpec, at time: Instant? = nil) -> SimPeerID {
        let index = nodes.count
        let address = Self.address(ofNode: index)
        var configuration = TorrentStateMachine.Configuration(
            infoHash: content.infoHash, peerID: PeerID.shoal(using: &random), geometry: content.geometry,
            pieceHashes: content.pieceHashes, seed: random.next())
        spec.configure(&configuration)
        let have = Bitfield(count: content.geometry.pieceCount, allSet: spec.isSeed)
        var storage = SimStorage(content: content, hashing: self.configuration.hashing)
        storage.corruptsReads = spec.corruptsUploads
        nodes.append(
            Node(
                address: address, link: spec.link, machine: TorrentStateMachine(configuration: configuration, have: have),
                storage: storage, spec: spec))
        nodeByAddress[address] = index
        queue.schedule(.join(node: index), at: max(time ?? now, now))
        return SimPeerID(index)
    }

    /// Takes a peer out of the swarm at `time`: its connections close, it is no longer listed.
    public func removePeer(_ peer: SimPeerID, at time: Instant? = nil) {
        queue.schedule(.leave(node: peer.index), at: max(time ?? now, now))
    }

    /// Runs `body` at `time` (for scenarios: churn, measurements).
    public func schedule(at time: Instant, _ body: @escaping (Simulation) -> Void) {
        calls[nextCall] = body
        queue.schedule(.call(nextCall), at: max(time, now))
        nextCall += 1
    }

    /// The address of the node with this index: 10.x.y.z, port 6881 (one host per peer, so a ban of one
    /// peer's address bans nobody else).
    static func address(ofNode index: Int) -> PeerAddress {
        PeerAddress(host: .ipv4(0x0A00_0000 + UInt32(index + 1)), port: 6881)
    }

    // MARK: - Running

    /// Why ``run(until:maxEvents:while:)`` returned.
    public enum Stop: Sendable, Hashable {
        /// Nothing is left to happen.
        case idle
        case deadline
        case eventLimit
        /// The condition became false.
        case condition
    }

    /// Processes events in order until `deadline`, `maxEvents` events, or `condition` turns false
    /// (checked after every event).
    @discardableResult
    public func run(until deadline: Instant, maxEvents: Int = .max, while condition: (Simulation) -> Bool = { _ in true })
        -> Stop
    {
        var processed = 0
        while let time = queue.nextTime {
            guard time <= deadline else {
                now = deadline
                return .deadline
            }
            guard processed < maxEvents else { return .eventLimit }
            let (at, event) = queue.pop()!
            now = at
            processed += 1
            eventsProcessed += 1
            handle(event)
            guard condition(self) else { return .condition }
        }
        return .idle
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
