import ShoalCore

/// Chooses which blocks to request from which peer, and keeps the books on every block in flight: the piece
/// picker of BEP 3 ("Piece downloading strategy"), modelled on libtorrent's `piece_picker`.
///
/// It counts how many peers have each piece (their bitfields, `have`, `have all`, departures), knows what we
/// have and what we want (per-piece priority: skip, normal, high), and tracks the 16 KiB blocks of every piece
/// being downloaded (open, requested from which peers, received from whom). `pick(for:peerHas:count:fast:random:)`
/// then chooses, in this order:
///
/// 1. open blocks of pieces already started, high priority first (finish partial pieces, so that they
///    complete and can be shared);
/// 2. new pieces: at random until we have `randomFirstPieces` (so that we soon have something to trade),
///    then rarest first with ties broken at random, or, in sequential mode, lowest index first; high-priority
///    pieces always before normal ones;
/// 3. open blocks of pieces reserved for another (fast) peer, when nothing else is left;
/// 4. in endgame (every block still needed is requested), blocks already requested from other peers, fewest
///    requesters first.
///
/// A peer flagged fast (one that downloads a piece within seconds) gets whole pieces to itself: a piece it
/// starts is reserved for it, so that other peers leave it alone until step 3 and a slow peer does not hold
/// up a piece the fast one could finish; and in step 1 it continues only its own pieces, taking new pieces
/// (step 2) before joining pieces others started.
///
/// `pick` only proposes; the caller reports each request it sends with `blockRequested` (or uses
/// `requestBlocks`, which does both). The picker reads no clock and draws randomness only from the generator
/// it is given.
///
/// Cost: a `have` costs O(1); a bitfield O(its set bits), or a deferred rebuild in O(pieces + peers) when it
/// covers more than an eighth of the torrent; a pick visits the pieces in flight, then scans the buckets of
/// rarest pieces until it finds pieces the peer has: O(pieces) at worst, typically a few slots.
public struct PiecePicker: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// Pick random pieces until we have this many (libtorrent's `initial_picker_threshold`).
        public var randomFirstPieces: Int
        /// Pick lowest index first instead of rarest first (streaming). High-priority pieces still come first.
        public var sequential: Bool
        /// Request blocks from several peers at once when every block still needed is requested (BEP 3).
        public var endgame: Bool
        /// In endgame, how many peers at most are asked for one block at the same time.
        public var maxRequestersPerBlock: Int

        public init(
            randomFirstPieces: Int = 4, sequential: Bool = false, endgame: Bool = true, maxRequestersPerBlock: Int = 2
        ) {
            self.randomFirstPieces = randomFirstPieces
            self.sequential = sequential
            self.endgame = endgame
            self.maxRequestersPerBlock = max(1, maxRequestersPerBlock)
        }
    }

    public let geometry: PieceGeometry
    public var configuration: Configuration
    /// The pieces we have (verified).
    public private(set) var have: Bitfield
    /// The number of pieces we want (priority above skip) and do not have.
    public private(set) var remainingCount: Int

    private(set) var priorities: [PiecePriority]
    /// Per piece: the number of peers that have it, not counting `seeds`.
    private(set) var counts: [Int32]
    /// Peers counted as having everything (`have all`, or a complete bitfield): they add one to every piece.
    private(set) var seeds: Set<PeerKey> = []
    var order: PieceOrder
    /// True when `order` must be rebuilt from `counts` before the next pick.
    var orderIsStale = true
    /// Pieces with a block requested or received, in no particular order.
    var partials: [PartialPiece] = []
    /// Per piece: its index in `partials`, or -1.
    var partialSlot: [Int32]
    /// No piece below this index is wanted at normal priority and missing (sequential mode).
    var sequentialCursor = 0

    /// A picker for a torrent of this geometry, with every piece at normal priority.
    /// - Parameter have: the pieces we already have (resume data); its count must be the piece count.
    public init(geometry: PieceGeometry, have: Bitfield? = nil, configuration: Configuration = Configuration()) {
        let pieceCount = geometry.pieceCount
        precondition(have == nil || have?.count == pieceCount, "the have bitfield must cover every piece")
        self.geometry = geometry
        self.configuration = configuration
        self.have = have ?? Bitfield(count: pieceCount)
        self.remainingCount = pieceCount - self.have.setCount
        self.priorities = Array(repeating: .normal, count: pieceCount)
        self.counts = Array(repeating: 0, count: pieceCount)
        self.order = PieceOrder(pieceCount: pieceCount)
        self.partialSlot = Array(repeating: -1, count: pieceCount)
    }

    // MARK: - What peers have

    /// A peer announced a piece (`have`). Call once per piece and peer, when the peer's bitfield gains it.
    public mutating func peerHas(_ piece: Int, peer: PeerKey) {
        guard piece >= 0, piece < geometry.pieceCount, !seeds.contains(peer) else { return }
        addAvailability(piece)
    }

    /// A peer sent its bitfield. A complete one counts the peer as a seed, which costs O(1).
    public mutating func peerBitfield(_ bitfield: Bitfield, peer: PeerKey) {
        guard bitfield.count == geometry.pieceCount, !seeds.contains(peer) else { return }
        if bitfield.isComplete {
            seeds.insert(peer)
        } else {
            adjustAvailability(bitfield, adding: true)
        }
    }

    /// A peer has every piece (`have all`, BEP 6).
    public mutating func peerHasAll(_ peer: PeerKey) {
        seeds.insert(peer)
    }

    /// A peer disconnected: its pieces no longer count, and its requests are void.
    /// - Parameter bitfield: what the peer had, as reported through `peerBitfield` and `peerHas` (ignored for
    ///   a peer counted as a seed).
    /// - Returns: the blocks it had requested, now open again.
    @discardableResult
    public mutating func peerLeft(_ peer: PeerKey, bitfield: Bitfield) -> [Block] {
        if seeds.remove(peer) == nil, bitfield.count == geometry.pieceCount {
            adjustAvailability(bitfield, adding: false)
        }
        return peerChoked(peer)
    }

    /// Every request of the peer is void: it choked us (BEP 3; with the fast extension, BEP 6, a choke voids
    /// nothing and each dropped request arrives as a reject instead), or it is gone.
    /// - Returns: the blocks it had requested, now open again unless another peer has them requested.
    @discardableResult
    public mutating func peerChoked(_ peer: PeerKey) -> [Block] {
        var released: [Block] = []
        var slot = 0
        while slot < partials.count {
            let piece = partials[slot].piece
            for index in partials[slot].releaseAll(by: peer) {
                released.append(geometry.block(piece: piece, index: index))
            }
            if partials[slot].reservedFor == peer { partials[slot].reservedFor = nil }
            if partials[slot].isIdle {
                removePartial(at: slot)
            } else {
                slot += 1
            }
        }
        return released.sorted()
    }

    // MARK: - Requests and blocks

    /// We sent a request for `block` to `peer`. With `fast`, a piece the request starts is reserved for the
    /// peer. Returns false when the request was not recorded: the block does not exist, its piece is ours,
    /// it is received, or it is already requested from this peer.
    @discardableResult
    public mutating func blockRequested(_ block: Block, by peer: PeerKey, fast: Bool = false) -> Bool {
        guard let index = geometry.blockIndex(of: block), !have[block.piece] else { return false }
        let slot: Int
        if let existing = partialIndex(of: block.piece) {
            slot = existing
        } else {
            slot = addPartial(block.piece)
            if fast { partials[slot].reservedFor = peer }
        }
        return partials[slot].request(index, by: peer)
    }

    /// The request for `block` from `peer` is void: rejected (BEP 6), timed out, or cancelled by us. The block
    /// reopens unless another peer has it requested. Returns whether such a request was recorded.
    @discardableResult
    public mutating func requestFailed(_ block: Block, peer: PeerKey) -> Bool {
        guard let index = geometry.blockIndex(of: block), let slot = partialIndex(of: block.piece),
            partials[slot].release(index, by: peer)
        else { return false }
        if partials[slot].reservedFor == peer, !partials[slot].hasRequests(from: peer) {
            partials[slot].reservedFor = nil
        }
        if partials[slot].isIdle { removePartial(at: slot) }
        return true
    }

    /// The data of `block` arrived from `peer` (requested or not). Returns whether it is new, which other
    /// peers should get a `cancel` for it, and whether it completes its piece.
    public mutating func blockReceived(_ block: Block, from peer: PeerKey) -> BlockArrival {
        guard let index = geometry.blockIndex(of: block), !have[block.piece] else { return .ignored }
        let slot = partialIndex(of: block.piece) ?? addPartial(block.piece)
        let (isNew, cancels) = partials[slot].receive(index, from: peer)
        return BlockArrival(isNew: isNew, cancels: cancels, completesPiece: isNew && partials[slot].isComplete)
    }

    /// The piece passed its hash check (or resume data says we have it): we have it now.
    public mutating func pieceVerified(_ piece: Int) {
        guard piece >= 0, piece < geometry.pieceCount, !have[piece] else { return }
        if !orderIsStale, let c = pieceClass(piece) {
            order.remove(piece, class: c, availability: Int(counts[piece]))
        }
        have.set(piece)
        if priorities[piece] != .skip { remainingCount -= 1 }
        if let slot = partialIndex(of: piece) { removePartial(at: slot) }
    }

    /// The piece failed its hash check: every received block reopens.
    /// - Returns: the peers that sent its blocks, ascending, so that the caller can count the failure
    ///   against them (and ban a peer that keeps sending bad data).
    @discardableResult
    public mutating func pieceFailed(_ piece: Int) -> [PeerKey] {
        guard piece >= 0, piece < geometry.pieceCount, let slot = partialIndex(of: piece) else { return [] }
        let senders = partials[slot].reopenReceived()
        partials[slot].reservedFor = nil
        if partials[slot].isIdle { removePartial(at: slot) }
        return senders
    }

    // MARK: - Priorities

    /// Sets one piece's priority. A piece set to skip keeps its requests in flight, but no more are picked.
    public mutating func setPriority(_ priority: PiecePriority, of piece: Int) {
        guard piece >= 0, piece < geometry.pieceCount, priorities[piece] != priority else { return }
        let oldClass = pieceClass(piece)
        if !have[piece], (priorities[piece] == .skip) != (priority == .skip) {
            remainingCount += priority == .skip ? -1 : 1
        }
        priorities[piece] = priority
        let newClass = pieceClass(piece)
        if !orderIsStale, oldClass != newClass {
            if let oldClass { order.remove(piece, class: oldClass, availability: Int(counts[piece])) }
            if let newClass { order.insert(piece, class: newClass, availability: Int(counts[piece])) }
        }
        sequentialCursor = min(sequentialCursor, piece)
    }

    /// Sets every piece's priority at once (file priorities mapped onto pieces); ignored unless there is
    /// one priority per piece.
    public mutating func setPriorities(_ newPriorities: [PiecePriority]) {
        guard newPriorities.count == geometry.pieceCount else { return }
        priorities = newPriorities
        remainingCount = (0..<geometry.pieceCount).filter { !have[$0] && priorities[$0] != .skip }.count
        orderIsStale = true
        sequentialCursor = 0
    }

    // MARK: - Reading the state

    /// The number of connected peers that have the piece, seeds included.
    public func availability(of piece: Int) -> Int {
        guard piece >= 0, piece < geometry.pieceCount else { return 0 }
        return Int(counts[piece]) + seeds.count
    }

    /// The number of peers counted as having every piece.
    public var seedCount: Int { seeds.count }

    public func priority(of piece: Int) -> PiecePriority {
        guard piece >= 0, piece < geometry.pieceCount else { return .skip }
        return priorities[piece]
    }

    /// True when we have every piece we want.
    public var isFinished: Bool { remainingCount == 0 }

    /// True when every block still needed is requested or received (BEP 3 endgame): only then does `pick`
    /// propose blocks that other peers were already asked for.
    public var isEndgame: Bool {
        guard remainingCount > 0 else { return false }
        var wantedPartials = 0
        for partial in partials where priorities[partial.piece] != .skip {
            if partial.openCount > 0 { return false }
            wantedPartials += 1
        }
        return wantedPartials == remainingCount
    }

    /// The pieces with blocks requested or received, ascending.
    public var downloadingPieces: [Int] { partials.map(\.piece).sorted() }

    /// The fast peer a piece in progress is reserved for, if any.
    public func reservation(of piece: Int) -> PeerKey? {
        partialIndex(of: piece).flatMap { partials[$0].reservedFor }
    }

    /// Where `block` stands; nil when no such block exists in this torrent.
    public func status(of block: Block) -> BlockStatus? {
        guard let index = geometry.blockIndex(of: block) else { return nil }
        if have[block.piece] { return .have }
        guard let slot = partialIndex(of: block.piece) else { return .open }
        let state = partials[slot].slots[index]
        switch state.state {
        case .open: return .open
        case .requested: return .requested(by: state.requesters)
        case .received: return .received(from: state.peer)
        }
    }

    /// Whether a peer with these pieces has one we want and lack: whether we should be interested (BEP 3).
    public func wantsAny(of peerHas: Bitfield) -> Bool {
        guard peerHas.count == geometry.pieceCount else { return false }
        for (byteIndex, byte) in peerHas.bytes.enumerated() {
            var bits = byte & ~have.bytes[byteIndex]
            while bits != 0 {
                let bit = bits.leadingZeroBitCount
                bits &= ~(UInt8(0x80) >> UInt8(bit))
                if priorities[byteIndex << 3 | bit] != .skip { return true }
            }
        }
        return false
    }

    // MARK: - Internals

    /// The class a piece is picked in: 0 for high, 1 for normal, nil when it is skipped or ours.
    func pieceClass(_ piece: Int) -> Int? {
        Self.pieceClass(have: have[piece], priority: priorities[piece])
    }

    static func pieceClass(have: Bool, priority: PiecePriority) -> Int? {
        guard !have else { return nil }
        switch priority {
        case .skip: return nil
        case .high: return 0
        case .normal: return 1
        }
    }

    func partialIndex(of piece: Int) -> Int? {
        guard piece >= 0, piece < geometry.pieceCount else { return nil }
        let slot = partialSlot[piece]
        return slot >= 0 ? Int(slot) : nil
    }

    mutating func rebuildOrder(random: inout some RandomNumberGenerator) {
        let have = self.have
        let priorities = self.priorities
        order.rebuild(
            counts: counts, classOf: { Self.pieceClass(have: have[$0], priority: priorities[$0]) }, random: &random)
        orderIsStale = false
    }

    private mutating func addPartial(_ piece: Int) -> Int {
        partials.append(PartialPiece(piece: piece, blockCount: geometry.blockCount(ofPiece: piece)))
        partialSlot[piece] = Int32(partials.count - 1)
        return partials.count - 1
    }

    /// Removes a record in O(1): the last one takes its slot.
    private mutating func removePartial(at slot: Int) {
        partialSlot[partials[slot].piece] = -1
        let last = partials.count - 1
        if slot != last {
            partials.swapAt(slot, last)
            partialSlot[partials[slot].piece] = Int32(slot)
        }
        partials.removeLast()
    }

    private mutating func addAvailability(_ piece: Int) {
        let previous = Int(counts[piece])
        counts[piece] += 1
        if !orderIsStale, let c = pieceClass(piece) { order.increment(piece, class: c, from: previous) }
    }

    private mutating func removeAvailability(_ piece: Int) {
        let previous = Int(counts[piece])
        guard previous > 0 else { return }
        counts[piece] -= 1
        if !orderIsStale, let c = pieceClass(piece) { order.decrement(piece, class: c, from: previous) }
    }

    /// Adds or removes one for each piece set in `bitfield`. A bitfield covering more than an eighth of the
    /// torrent only updates the counts and leaves the order to be rebuilt at the next pick, which is cheaper
    /// than moving each piece (libtorrent does the same with its dirty flag).
    private mutating func adjustAvailability(_ bitfield: Bitfield, adding: Bool) {
        if bitfield.setCount > max(32, geometry.pieceCount / 8) { orderIsStale = true }
        if orderIsStale {
            // Only the counts: a tight loop over the set bits.
            counts.withUnsafeMutableBufferPointer { counts in
                bitfield.bytes.withUnsafeBufferPointer { bytes in
                    for byteIndex in 0..<bytes.count where bytes[byteIndex] != 0 {
                        var bits = bytes[byteIndex]
                        while bits != 0 {
                            let bit = bits.leadingZeroBitCount
                            bits &= ~(UInt8(0x80) >> UInt8(bit))
                            let piece = byteIndex << 3 | bit
                            if adding {
                                counts[piece] += 1
                            } else if counts[piece] > 0 {
                                counts[piece] -= 1
                            }
                        }
                    }
                }
            }
            return
        }
        for (byteIndex, byte) in bitfield.bytes.enumerated() where byte != 0 {
            var bits = byte
            while bits != 0 {
                let bit = bits.leadingZeroBitCount
                bits &= ~(UInt8(0x80) >> UInt8(bit))
                let piece = byteIndex << 3 | bit
                if adding { addAvailability(piece) } else { removeAvailability(piece) }
            }
        }
    }

    /// Problems with the internal structures, for tests; empty when all is consistent.
    func violations() -> [String] {
        var problems: [String] = []
        if !orderIsStale {
            problems += order.violations(counts: counts, classOf: { pieceClass($0) })
        }
        let remaining = (0..<geometry.pieceCount).filter { !have[$0] && priorities[$0] != .skip }.count
        if remaining != remainingCount { problems.append("remainingCount \(remainingCount), expected \(remaining)") }
        for (slot, partial) in partials.enumerated() {
            if partialSlot[partial.piece] != Int32(slot) {
                problems.append("piece \(partial.piece): partial slot is stale")
            }
            if have[partial.piece] { problems.append("piece \(partial.piece): ours but still in progress") }
            problems += partial.violations()
        }
        let recorded = partialSlot.filter { $0 >= 0 }.count
        if recorded != partials.count { problems.append("\(recorded) pieces point at \(partials.count) records") }
        return problems
    }
}
