import ShoalCore

/// Bytes per second over a sliding window, from bytes recorded as they move. The window is cut into equal
/// time slots kept in a ring: recording touches one slot (O(1) per block), reading sums the ring (O(slots)).
///
/// The estimate covers exactly the last `window`: the slots inside it count whole, and the oldest slot, which
/// the window only partly overlaps, counts for the part it overlaps, so a steady flow reads steady with no
/// sawtooth at slot boundaries. Until a whole window has passed since measuring began, the average is over
/// the time since then, so a new peer is not underrated.
public struct RateEstimator: Hashable, Sendable {
    /// The span averaged over.
    public let window: Interval
    /// Every byte ever recorded.
    public private(set) var totalBytes: Int64 = 0

    private let slotCount: Int
    private let slotLength: Int64
    /// `slotCount + 1` slots: those inside the window and the one it partly overlaps. One array of pairs: a
    /// peer has two estimators, read at every rechoke, and each array is an allocation and a cache miss.
    private var slots: [Slot]
    private var latestEpoch: Int64 = .min
    private let start: Instant

    /// - Parameters:
    ///   - window: the averaging span (10 s: about one rechoke interval; libtorrent averages over 5 to 20 s).
    ///   - slots: how many slots the window is cut into; more is smoother, reading costs more.
    ///   - now: when measuring starts (the connection, say).
    public init(window: Interval = .seconds(10), slots: Int = 10, now: Instant) {
        let slots = max(1, slots)
        self.slotCount = slots
        self.slotLength = max(1, window.nanoseconds / Int64(slots))
        self.window = .nanoseconds(slotLength * Int64(slots))
        self.slots = Array(repeating: Slot(epoch: .min, bytes: 0), count: slots + 1)
        self.start = now
    }

    /// Counts `bytes` moved at `now`. Bytes dated before the window are dropped.
    public mutating func record(_ bytes: Int, now: Instant) {
        guard bytes > 0 else { return }
        totalBytes = Saturating.add(totalBytes, Int64(bytes))
        let (epoch, _) = position(of: now)
        if latestEpoch != .min, epoch <= latestEpoch - Int64(slots.count) { return }
        latestEpoch = max(latestEpoch, epoch)
        let index = slot(of: epoch)
        if slots[index].epoch != epoch {
            slots[index] = Slot(epoch: epoch, bytes: 0)
        }
        slots[index].bytes = Saturating.add(slots[index].bytes, Int64(bytes))
    }

    /// Bytes per second over the window ending at `now`.
    public func rate(now: Instant) -> Double {
        let (epoch, offset) = position(of: now)
        let oldest = epoch - Int64(slotCount)
        // Nothing recorded inside the window (most peers, most of the time): no slot to visit.
        guard latestEpoch >= oldest else { return 0 }
        var inside: Int64 = 0
        var overlapped: Int64 = 0
        for slot in slots where slot.epoch >= oldest && slot.epoch <= epoch {
            if slot.epoch == oldest {
                overlapped = slot.bytes
            } else {
                inside = Saturating.add(inside, slot.bytes)
            }
        }
        let elapsed = now - start
        if elapsed >= window {
            let overlap = 1 - Double(offset) / Double(slotLength)
            return (Double(inside) + Double(overlapped) * overlap) / window.seconds
        }
        // Less than a window since the start: every byte recorded is inside.
        let total = Double(inside) + Double(overlapped)
        return total == 0 ? 0 : total / max(elapsed, .nanoseconds(slotLength)).seconds
    }

    /// The slot number of an instant, and how far into that slot it lies.
    private func position(of instant: Instant) -> (epoch: Int64, offset: Int64) {
        let (quotient, remainder) = instant.nanoseconds.quotientAndRemainder(dividingBy: slotLength)
        return remainder < 0 ? (quotient - 1, remainder + slotLength) : (quotient, remainder)
    }

    private func slot(of epoch: Int64) -> Int {
        let count = Int64(slots.count)
        return Int(((epoch % count) + count) % count)
    }

    /// The bytes recorded in one slot of time, and which slot (its epoch: the instant's slot number).
    private struct Slot: Hashable, Sendable {
        var epoch: Int64
        var bytes: Int64
    }
}
