/// A piece being downloaded: the state of each of its blocks. The picker keeps one for every piece with a
/// block requested or received, and drops it when the piece is verified or nothing is left in flight.
struct PartialPiece: Sendable {
    struct Slot: Sendable {
        enum State: UInt8, Sendable { case open, requested, received }

        var state: State = .open
        /// The first requester while requested; the sender once received.
        var peer = PeerKey(0)
        /// Further requesters (endgame); empty, and so without storage, otherwise.
        var others: [PeerKey] = []

        func isRequested(by candidate: PeerKey) -> Bool {
            state == .requested && (peer == candidate || others.contains(candidate))
        }

        var requesterCount: Int { state == .requested ? 1 + others.count : 0 }

        var requesters: [PeerKey] { state == .requested ? ([peer] + others).sorted() : [] }
    }

    let piece: Int
    private(set) var slots: [Slot]
    private(set) var openCount: Int
    private(set) var requestedCount = 0
    private(set) var receivedCount = 0
    /// A fast peer that started this piece and gets it to itself (`PiecePicker.pick(... fast: true)`).
    var reservedFor: PeerKey?

    init(piece: Int, blockCount: Int) {
        self.piece = piece
        self.slots = Array(repeating: Slot(), count: blockCount)
        self.openCount = blockCount
    }

    /// True when no block is requested or received: the piece needs no record.
    var isIdle: Bool { requestedCount == 0 && receivedCount == 0 }
    var isComplete: Bool { receivedCount == slots.count }

    /// Records a request; false when the block is received or already requested from `peer`.
    mutating func request(_ index: Int, by peer: PeerKey) -> Bool {
        switch slots[index].state {
        case .open:
            slots[index] = Slot(state: .requested, peer: peer)
            openCount -= 1
            requestedCount += 1
            return true
        case .requested:
            guard !slots[index].isRequested(by: peer) else { return false }
            slots[index].others.append(peer)
            return true
        case .received:
            return false
        }
    }

    /// Forgets `peer`'s request for the block; the block reopens when no request is left. False when `peer`
    /// had not requested it.
    mutating func release(_ index: Int, by peer: PeerKey) -> Bool {
        guard slots[index].isRequested(by: peer) else { return false }
        if slots[index].peer == peer {
            if let next = slots[index].others.popLast() {
                slots[index].peer = next
            } else {
                slots[index] = Slot()
                requestedCount -= 1
                openCount += 1
            }
        } else if let at = slots[index].others.firstIndex(of: peer) {
            slots[index].others.remove(at: at)
        }
        return true
    }

    /// Marks the block received from `peer`. Returns whether it is new, and the other peers that had
    /// requested it (who should get a cancel).
    mutating func receive(_ index: Int, from peer: PeerKey) -> (isNew: Bool, cancels: [PeerKey]) {
        switch slots[index].state {
        case .received:
            return (false, [])
        case .open:
            openCount -= 1
        case .requested:
            requestedCount -= 1
        }
        // Usually the one requester is the sender: then nobody needs a cancel, and no list is built.
        let cancels =
            slots[index].peer == peer && slots[index].others.isEmpty
            ? [] : slots[index].requesters.filter { $0 != peer }
        slots[index] = Slot(state: .received, peer: peer)
        receivedCount += 1
        return (true, cancels)
    }

    /// Reopens every received block (the piece failed its hash); returns the peers that sent them, ascending.
    mutating func reopenReceived() -> [PeerKey] {
        var senders = Set<PeerKey>()
        for index in slots.indices where slots[index].state == .received {
            senders.insert(slots[index].peer)
            slots[index] = Slot()
        }
        openCount += receivedCount
        receivedCount = 0
        return senders.sorted()
    }

    /// Forgets every request of `peer`; returns the indices of the blocks it had requested.
    mutating func releaseAll(by peer: PeerKey) -> [Int] {
        var released: [Int] = []
        for index in slots.indices where slots[index].isRequested(by: peer) {
            _ = release(index, by: peer)
            released.append(index)
        }
        return released
    }

    /// Whether `peer` has any block of this piece requested.
    func hasRequests(from peer: PeerKey) -> Bool {
        slots.contains { $0.isRequested(by: peer) }
    }

    /// Problems with the counters, for tests.
    func violations() -> [String] {
        let open = slots.filter { $0.state == .open }.count
        let requested = slots.filter { $0.state == .requested }.count
        let received = slots.filter { $0.state == .received }.count
        var problems: [String] = []
        if (open, requested, received) != (openCount, requestedCount, receivedCount) {
            problems.append(
                "piece \(piece): counters \(openCount)/\(requestedCount)/\(receivedCount), "
                    + "blocks \(open)/\(requested)/\(received)")
        }
        for slot in slots where slot.state == .requested && Set(slot.requesters).count != slot.requesterCount {
            problems.append("piece \(piece): a block lists a requester twice")
        }
        if isIdle { problems.append("piece \(piece): idle but still recorded") }
        return problems
    }
}
