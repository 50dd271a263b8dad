import ShoalCore

/// Requests in flight on a connection, oldest first, each found by its block in O(1): our requests to a peer,
/// and the peer's requests to us.
///
/// A plain array made every block received, request and cancel a scan of up to `maxOutstandingRequests`
/// (500) entries, and every answer a shift of the rest. Here entries sit in sending order in `slots`, a
/// removed one leaving a hole (nil) that is trimmed from the front or compacted away once holes outnumber
/// entries; `positions` maps each block to its sequence number (`base` is that of `slots[0]`). A block is
/// in the queue at most once.
struct OutstandingRequests: Sendable {
    struct Entry: Sendable {
        var block: BlockRequest
        var sentAt: Instant
        /// When we cancelled it (fast extension: it waits for its answer).
        var cancelledAt: Instant?
    }

    private var slots: [Entry?] = []
    /// The first slot that may hold an entry (those before it are holes).
    private var head = 0
    /// The sequence number of `slots[0]`.
    private var base = 0
    private var positions = BlockPositions()
    /// Entries, cancelled ones included.
    private(set) var count = 0
    /// Entries not cancelled.
    private(set) var liveCount = 0
    /// No cancelled entry was cancelled before this (nil: there is none). A lower bound, made exact by
    /// ``removeAll(where:)``, so that a timer can tell in O(1) that no cancelled entry has expired yet.
    private(set) var earliestCancellation: Instant?

    var isEmpty: Bool { count == 0 }
    var cancelledCount: Int { count - liveCount }

    /// The entry for `block`, if it is outstanding (cancelled or not).
    func entry(for block: BlockRequest) -> Entry? {
        guard let sequence = positions[block] else { return nil }
        return slots[sequence - base]
    }

    /// Adds a request as the newest; `block` must not be outstanding.
    mutating func append(_ entry: Entry) {
        positions.set(base + slots.count, for: entry.block)
        slots.append(entry)
        count += 1
        if entry.cancelledAt == nil { liveCount += 1 }
    }

    /// Removes the entry for `block` and returns it, if there was one.
    @discardableResult
    mutating func remove(_ block: BlockRequest) -> Entry? {
        guard let sequence = positions.remove(block) else { return nil }
        let slot = sequence - base
        let entry = slots[slot]
        slots[slot] = nil
        count -= 1
        if entry?.cancelledAt == nil { liveCount -= 1 }
        if count == liveCount { earliestCancellation = nil }
        trim()
        return entry
    }

    /// Marks the live request for `block` cancelled at `now`; false when there is none.
    mutating func cancel(_ block: BlockRequest, now: Instant) -> Bool {
        guard let sequence = positions[block], slots[sequence - base]?.cancelledAt == nil else { return false }
        slots[sequence - base]!.cancelledAt = now
        liveCount -= 1
        earliestCancellation = min(earliestCancellation ?? now, now)
        return true
    }

    /// Removes every entry for which `shouldRemove` is true.
    mutating func removeAll(where shouldRemove: (Entry) -> Bool) {
        var doomed: [BlockRequest] = []
        var earliest: Instant?
        for entry in entries {
            if shouldRemove(entry) {
                doomed.append(entry.block)
            } else if let cancelledAt = entry.cancelledAt {
                earliest = min(earliest ?? cancelledAt, cancelledAt)
            }
        }
        for block in doomed { remove(block) }
        earliestCancellation = earliest
    }

    mutating func removeAll() {
        self = OutstandingRequests()
    }

    /// The entries, oldest first.
    var entries: some Sequence<Entry> {
        slots[head...].lazy.compactMap { $0 }
    }

    /// The blocks of the live entries, oldest first.
    var live: [BlockRequest] {
        var blocks: [BlockRequest] = []
        blocks.reserveCapacity(liveCount)
        for entry in entries where entry.cancelledAt == nil { blocks.append(entry.block) }
        return blocks
    }

    /// Drops holes at the front; compacts when holes outnumber entries (amortised O(1) per removal).
    private mutating func trim() {
        while head < slots.count, slots[head] == nil { head += 1 }
        if head == slots.count {
            base += slots.count
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if slots.count - head > 2 * count + 32 {
            let kept = slots[head...].compactMap { $0 }
            base = 0
            head = 0
            slots.removeAll(keepingCapacity: true)
            for entry in kept {
                positions.set(slots.count, for: entry.block)
                slots.append(entry)
            }
        } else if head > 32, head * 2 > slots.count {
            slots.removeFirst(head)
            base += head
            head = 0
        }
    }
}
