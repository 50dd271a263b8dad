/// A map from blocks to integers (where each sits in a request queue), for the per-block lookups of
/// ``OutstandingRequests``.
///
/// A `Dictionary<BlockRequest, Int>` hashed the block's three fields with SipHash on every lookup, insertion and
/// removal, a few hundred instructions each and several per block moved. Here the table is open addressing with
/// linear probing over a power of two of slots, at most half full; the hash multiplies the fields by a 64-bit
/// odd constant and keeps the top bits (Fibonacci hashing), and removal shifts the following entries back, so
/// there are no tombstones. The hash is not keyed: a peer choosing the blocks it asks for could make them
/// collide, but the queues it fills are bounded (`maxPeerRequests`), so a lookup then costs at most a scan of
/// that many entries, which is what a plain array cost always.
struct BlockPositions: Sendable {
    private struct Entry: Sendable {
        var block: BlockRequest
        var position: Int
    }

    private var slots: [Entry?] = []
    /// 64 minus log2 of the slot count: the hash keeps that many top bits.
    private var shift = 64
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// The position of `block`, if it is in the map.
    subscript(block: BlockRequest) -> Int? {
        guard count > 0 else { return nil }
        var slot = home(of: block)
        while let entry = slots[slot] {
            if entry.block == block { return entry.position }
            slot = (slot + 1) & (slots.count - 1)
        }
        return nil
    }

    /// Sets the position of `block`, adding it if it is not in the map.
    mutating func set(_ position: Int, for block: BlockRequest) {
        if (count + 1) * 2 > slots.count { grow() }
        var slot = home(of: block)
        while let entry = slots[slot] {
            if entry.block == block {
                slots[slot]!.position = position
                return
            }
            slot = (slot + 1) & (slots.count - 1)
        }
        slots[slot] = Entry(block: block, position: position)
        count += 1
    }

    /// Removes `block` and returns its position, if it was in the map.
    @discardableResult
    mutating func remove(_ block: BlockRequest) -> Int? {
        guard count > 0 else { return nil }
        let mask = slots.count - 1
        var hole = home(of: block)
        while true {
            guard let entry = slots[hole] else { return nil }
            if entry.block == block { break }
            hole = (hole + 1) & mask
        }
        let position = slots[hole]!.position
        slots[hole] = nil
        count -= 1
        // Shift back the entries after the hole that would no longer be found past it.
        var next = (hole + 1) & mask
        while let entry = slots[next] {
            let home = home(of: entry.block)
            // The entry may fill the hole unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !stays {
                slots[hole] = entry
                slots[next] = nil
                hole = next
            }
            next = (next + 1) & mask
        }
        return position
    }

    mutating func removeAll() {
        if count > 0 { slots = Array(repeating: nil, count: slots.count) }
        count = 0
    }

    private func home(of block: BlockRequest) -> Int {
        let fields = (UInt64(block.piece) << 32 | UInt64(block.offset)) ^ (UInt64(block.length) << 17)
        return Int(truncatingIfNeeded: (fields &* 0x9E37_79B9_7F4A_7C15) >> UInt64(shift))
    }

    /// Doubles the table (16 slots at first) and puts every entry back.
    private mutating func grow() {
        let old = slots
        let capacity = max(16, old.count * 2)
        slots = Array(repeating: nil, count: capacity)
        shift = 64 - capacity.trailingZeroBitCount
        count = 0
        for case let entry? in old { set(entry.position, for: entry.block) }
    }
}
