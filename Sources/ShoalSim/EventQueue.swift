import HeapModule
import ShoalCore

/// Events waiting for their virtual time, taken in order of (time, sequence): two events due at the
/// same instant come out in the order they were scheduled, so a run depends on nothing but its seed.
public struct EventQueue<Event> {
    struct Entry: Comparable {
        var time: Instant
        var sequence: UInt64
        var event: Event

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.time, lhs.sequence) < (rhs.time, rhs.sequence)
        }

        static func == (lhs: Entry, rhs: Entry) -> Bool {
            lhs.time == rhs.time && lhs.sequence == rhs.sequence
        }
    }

    private var heap = Heap<Entry>()
    private var nextSequence: UInt64 = 0

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    /// When the next event is due.
    public var nextTime: Instant? { heap.min?.time }

    /// Schedules `event` at `time`.
    public mutating func schedule(_ event: Event, at time: Instant) {
        heap.insert(Entry(time: time, sequence: nextSequence, event: event))
        nextSequence &+= 1
    }

    /// The earliest event, removed.
    public mutating func pop() -> (time: Instant, event: Event)? {
        guard let entry = heap.popMin() else { return nil }
        return (entry.time, entry.event)
    }
}
