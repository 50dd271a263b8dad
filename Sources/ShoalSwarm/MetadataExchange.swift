import NIOCore
import ShoalCore
import ShoalWire

/// Fetching a torrent's info dictionary from its peers (BEP 9, "metadata"), as a pure core: peers that
/// advertise `ut_metadata` and a `metadata_size` come in, `ut_metadata` messages and time come in;
/// requests to send, peers to close and, once, the checked info dictionary come out.
///
/// - Pieces (16 KiB) are asked of several peers at once, lowest missing piece first, at most
///   ``Configuration/maxRequestsPerPeer`` outstanding per peer.
/// - A request not answered within ``Configuration/requestTimeout`` goes to another peer, and back to
///   the same one only when no other takes it (a late answer is still taken). A rejected piece goes to
///   another peer; the one that rejected it is not asked for it again for ``Configuration/retryDelay``
///   (BEP 9: a peer without the metadata rejects; one with flood protection may accept later).
/// - A peer that sends a piece of another `total_size` than it advertised, a piece it was not asked
///   for, or a malformed message (the caller's decoder reports that) is closed.
/// - **Which size**: peers may advertise different sizes (a hostile one lies). The size advertised by
///   the most peers is fetched (ties: the peer that came first); only peers advertising it are asked.
///   Memory is one buffer of that size at most, bounded by ``Configuration/maxMetadataSize``.
/// - **Checking**: the whole is checked against every info-hash given (SHA-1 for v1, SHA-256 for v2).
///   On a mismatch the pieces are thrown away. If one peer sent them all, it is closed and banned (its
///   bytes are provably wrong). If several did, the liar cannot be told apart: from then on every
///   attempt takes all its pieces from one peer, so that each further mismatch convicts exactly one
///   peer, and the exchange ends with good metadata as long as one honest peer remains.
public struct MetadataExchange: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// The hashes the metadata must match: a v1 (SHA-1) and/or a v2 (SHA-256) info-hash.
        public var infoHashes: [InfoHash]
        /// An unanswered request goes to another peer after this long.
        public var requestTimeout: Interval
        /// How long a peer that rejected a piece is not asked for it again.
        public var retryDelay: Interval
        /// Requests outstanding to one peer.
        public var maxRequestsPerPeer: Int
        /// The largest metadata fetched; peers advertising more are not asked.
        public var maxMetadataSize: Int

        public init(
            infoHashes: [InfoHash], requestTimeout: Interval = .seconds(15), retryDelay: Interval = .seconds(30),
            maxRequestsPerPeer: Int = 4, maxMetadataSize: Int = ExtensionHandshake.maxMetadataSize
        ) {
            self.infoHashes = infoHashes
            self.requestTimeout = requestTimeout
            self.retryDelay = retryDelay
            self.maxRequestsPerPeer = max(1, maxRequestsPerPeer)
            self.maxMetadataSize = min(maxMetadataSize, ExtensionHandshake.maxMetadataSize)
        }
    }

    /// What the exchange asks its caller to do.
    public enum Action: Hashable, Sendable {
        /// Send this message to the peer (as an `extended` message under the peer's `ut_metadata` id).
        case send(PeerKey, MetadataMessage)
        /// Close the peer's connection for this reason (ban it when the error says so).
        case close(PeerKey, WireError)
        /// The info dictionary, complete and matching every info-hash. Comes once.
        case completed([UInt8])
    }

    /// One peer that advertises `ut_metadata`.
    struct Peer: Sendable {
        /// Its `metadata_size`; nil while it has none (it lacks the metadata itself).
        var size: Int?
        /// Order of arrival (ties between sizes, and the order of single-source attempts).
        var sequence: Int
        /// Pieces asked of it, with when.
        var outstanding: [Int: Instant] = [:]
        /// Pieces whose request timed out: an answer is still welcome.
        var late: Set<Int> = []
        /// Pieces it rejected, and until when it is not asked for them again.
        var notBefore: [Int: Instant] = [:]
    }

    /// The metadata being put together, for one size.
    struct Assembly: Sendable {
        var size: Int
        var pieces: [[UInt8]?]
        var sources: [PeerKey?]
        var received = 0
        /// In single-source mode: the one peer asked.
        var source: PeerKey?

        init(size: Int) {
            self.size = size
            let count = MetadataMessage.pieceCount(totalSize: size)
            pieces = Array(repeating: nil, count: count)
            sources = Array(repeating: nil, count: count)
        }
    }

    public let configuration: Configuration
    private(set) var peers: [PeerKey: Peer] = [:]
    private var assembly: Assembly?
    /// After a mismatch of pieces from several peers: every attempt takes all its pieces from one peer.
    private(set) var singleSource = false
    /// In single-source mode: peers whose turn ended because they rejected a piece or let a request time
    /// out; the next source is the first peer not here (all here: a new round).
    private var passedOver: Set<PeerKey> = []
    private var nextSequence = 0
    /// Set once the metadata is complete and checked.
    public private(set) var isComplete = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Pieces received towards the size being fetched, and how many it has (nil before any peer
    /// advertised a usable size).
    public var progress: (received: Int, total: Int)? {
        assembly.map { ($0.received, $0.pieces.count) }
    }

    /// Peers that advertise `ut_metadata`.
    public var peerCount: Int { peers.count }

    // MARK: - Events

    /// A peer advertised `ut_metadata` in its extension handshake (again, when a later handshake changes
    /// its `metadata_size`). Sizes above ``Configuration/maxMetadataSize`` count as none.
    public mutating func peerAdvertised(_ key: PeerKey, metadataSize: Int?, now: Instant) -> [Action] {
        guard !isComplete else { return [] }
        let size = metadataSize.flatMap { (1...configuration.maxMetadataSize).contains($0) ? $0 : nil }
        if var peer = peers[key] {
            guard peer.size != size else { return [] }
            // Its requests were for the old size: forget them (their answers would now be refused).
            peer.size = size
            peer.outstanding = [:]
            peer.late = []
            peer.notBefore = [:]
            peers[key] = peer
        } else {
            peers[key] = Peer(size: size, sequence: nextSequence)
            nextSequence += 1
        }
        var actions: [Action] = []
        fill(now: now, into: &actions)
        return actions
    }

    /// The peer left (or disabled `ut_metadata`): what it was asked goes to others.
    public mutating func peerLeft(_ key: PeerKey, now: Instant) -> [Action] {
        guard peers.removeValue(forKey: key) != nil, !isComplete else { return [] }
        if singleSource, assembly?.source == key, let size = assembly?.size { assembly = Assembly(size: size) }
        var actions: [Action] = []
        fill(now: now, into: &actions)
        return actions
    }

    /// A `ut_metadata` message from a peer (a request is the caller's to answer: it is ignored here).
    public mutating func received(_ message: MetadataMessage, from key: PeerKey, now: Instant) -> [Action] {
        guard !isComplete else { return [] }
        var actions: [Action] = []
        switch message {
        case .request:
            return []
        case .reject(let piece):
            guard var peer = peers[key], peer.outstanding.removeValue(forKey: piece) != nil || peer.late.remove(piece) != nil
            else { return [] }  // a reject of nothing asked costs nothing
            peer.notBefore[piece] = now + configuration.retryDelay
            peers[key] = peer
            passOver(key)
        case .data(let piece, let totalSize, let block):
            guard var peer = peers[key] else {
                return [.close(key, Self.violation("a metadata piece from a peer that was not asked"))]
            }
            guard peer.size == totalSize else {
                peers[key] = nil
                return [.close(key, Self.violation("metadata of \(totalSize) bytes from a peer that advertised \(peer.size.map(String.init) ?? "none")"))]
                    + refilled(now: now)
            }
            guard peer.outstanding.removeValue(forKey: piece) != nil || peer.late.remove(piece) != nil else {
                peers[key] = nil
                return [.close(key, Self.violation("metadata piece \(piece) was not asked for"))] + refilled(now: now)
            }
            peer.notBefore[piece] = nil
            peers[key] = peer
            store(piece, bytes: block, from: key)
            if let assembly, assembly.received == assembly.pieces.count {
                check(now: now, into: &actions)
                if isComplete { return actions }
            }
        }
        fill(now: now, into: &actions)
        return actions
    }

    /// Time passed: requests that timed out go to other peers; peers become askable again.
    public mutating func tick(now: Instant) -> [Action] {
        guard !isComplete else { return [] }
        for key in peers.keys.sorted() {
            guard var peer = peers[key] else { continue }
            var changed = false
            for (piece, sentAt) in peer.outstanding where now >= sentAt + configuration.requestTimeout {
                peer.outstanding[piece] = nil
                peer.late.insert(piece)
                changed = true
            }
            if changed {
                peers[key] = peer
                passOver(key)
            }
        }
        var actions: [Action] = []
        fill(now: now, into: &actions)
        return actions
    }

    /// When ``tick(now:)`` next has something to do: a request's timeout, or a refused piece becoming askable.
    public func nextDeadline(now: Instant) -> Instant? {
        guard !isComplete else { return nil }
        var deadline: Instant?
        for peer in peers.values {
            for sentAt in peer.outstanding.values {
                let due = sentAt + configuration.requestTimeout
                deadline = min(deadline ?? due, due)
            }
            for until in peer.notBefore.values where until > now {
                deadline = min(deadline ?? until, until)
            }
        }
        return deadline
    }

    // MARK: - Internals

    /// In single-source mode, the source that rejected or was slow gives its turn to the next peer.
    private mutating func passOver(_ key: PeerKey) {
        guard singleSource, let assembly, assembly.source == key else { return }
        passedOver.insert(key)
        self.assembly = Assembly(size: assembly.size)
    }

    private static func violation(_ reason: String, ban: Bool = false) -> WireError {
        WireError(.closedByTorrent(reason, ban: ban))
    }

    private mutating func refilled(now: Instant) -> [Action] {
        var actions: [Action] = []
        fill(now: now, into: &actions)
        return actions
    }

    /// The size to fetch: the one most peers advertise (ties: the earliest peer's).
    private func chosenSize() -> Int? {
        var votes: [Int: (count: Int, first: Int)] = [:]
        for peer in peers.values {
            guard let size = peer.size else { continue }
            let vote = votes[size] ?? (0, peer.sequence)
            votes[size] = (vote.count + 1, min(vote.first, peer.sequence))
        }
        return votes.min { a, b in
            a.value.count != b.value.count ? a.value.count > b.value.count : a.value.first < b.value.first
        }?.key
    }

    /// Keeps a piece of the size being fetched (copied: the block is a slice of a whole read buffer).
    private mutating func store(_ piece: Int, bytes block: ByteBuffer, from key: PeerKey) {
        guard var assembly, assembly.size == peers[key]?.size, assembly.pieces.indices.contains(piece),
            assembly.pieces[piece] == nil, !singleSource || assembly.source == key
        else { return }
        assembly.pieces[piece] = Array(block.readableBytesView)
        assembly.sources[piece] = key
        assembly.received += 1
        self.assembly = assembly
    }

    /// All pieces are in: check the whole against the info-hashes.
    private mutating func check(now: Instant, into actions: inout [Action]) {
        guard let assembly else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(assembly.size)
        for piece in assembly.pieces { bytes += piece ?? [] }
        let matches = !configuration.infoHashes.isEmpty && configuration.infoHashes.allSatisfy { expected in
            switch expected {
            case .v1: InfoHash.v1(ofInfo: bytes[...]) == expected
            case .v2: InfoHash.v2(ofInfo: bytes[...]) == expected
            }
        }
        if matches {
            isComplete = true
            self.assembly = nil
            peers = [:]
            actions.append(.completed(bytes))
            return
        }
        let contributors = Set(assembly.sources.compactMap { $0 })
        self.assembly = Assembly(size: assembly.size)
        if contributors.count == 1, let liar = contributors.first {
            peers[liar] = nil
            actions.append(.close(liar, Self.violation("sent metadata that does not match the info-hash", ban: true)))
        } else {
            singleSource = true
        }
    }

    /// Sends what the peers have room for: missing pieces nobody is asked for, lowest first, dealt to the
    /// peers in turn (in order of arrival), so that several peers share the work. A piece a peer let time
    /// out goes to others first, and back to it only when nobody else takes it; a piece it rejected is not
    /// asked of it again before its retry time.
    private mutating func fill(now: Instant, into actions: inout [Action]) {
        guard !isComplete, let size = chosenSize() else { return }
        if assembly?.size != size { assembly = Assembly(size: size) }
        guard var assembly else { return }
        let askable = peers.filter { $0.value.size == size }.sorted { $0.value.sequence < $1.value.sequence }.map(\.key)
        if singleSource, assembly.source.map({ !askable.contains($0) }) ?? true {
            // A new source: what the old one sent is not kept (every piece of an attempt from one peer).
            passedOver.formIntersection(askable)
            if askable.allSatisfy(passedOver.contains) { passedOver = [] }
            assembly = Assembly(size: size)
            assembly.source = askable.first { !passedOver.contains($0) }
            self.assembly = assembly
        }
        let keys = singleSource ? assembly.source.map { [$0] } ?? [] : askable
        var candidates = keys.compactMap { peers[$0] }
        guard candidates.count == keys.count, !candidates.isEmpty else { return }
        var requested = Set<Int>()
        for peer in candidates { requested.formUnion(peer.outstanding.keys) }
        var free = assembly.pieces.indices.filter { assembly.pieces[$0] == nil && !requested.contains($0) }
        let room = configuration.maxRequestsPerPeer
        var turn = 0
        var open = candidates.filter { $0.outstanding.count < room }.count
        for pass in 0..<2 {
            var remaining: [Int] = []
            for piece in free {
                guard open > 0 else { break }
                var taken = false
                for offset in 0..<candidates.count {
                    let index = (turn + offset) % candidates.count
                    let peer = candidates[index]
                    guard peer.outstanding.count < room, peer.notBefore[piece].map({ now >= $0 }) ?? true,
                        pass == 1 || !peer.late.contains(piece)
                    else { continue }
                    candidates[index].outstanding[piece] = now
                    if candidates[index].outstanding.count == room { open -= 1 }
                    actions.append(.send(keys[index], .request(piece: piece)))
                    turn = index + 1
                    taken = true
                    break
                }
                if !taken { remaining.append(piece) }
            }
            free = remaining
        }
        for (key, peer) in zip(keys, candidates) { peers[key] = peer }
    }
}
