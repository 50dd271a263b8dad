import DequeModule
import HeapModule
import ShoalCore

/// Events waiting for their virtual time, taken in order of (time, sequence): two events due at the
/// same instant come out in the order they were scheduled, so a run depends on nothing but its seed.
///
/// Events due at the instant of the last one taken (a disk that takes no time, a write that has left)
/// are a fifth of a swarm's: they wait in a first-in-first-out line beside the heap, in the order (time,
/// sequence) that the heap would give them, and `pop` takes from whichever holds the earlier. The
/// line holds events of one instant only: time moves on only once it is empty.
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
    /// Events due at `current`, in sequence order.
    private var line: Deque<Entry> = []
    /// The time of the last event taken.
    private var current = Instant.zero
    private var taken = false
    private var nextSequence: UInt64 = 0

    public init() {}

    public var count: Int { heap.count + line.count }
    public var isEmpty: Bool { heap.isEmpty && line.isEmpty }
    /// When the next event is due.
    public var nextTime: Instant? {
        guard let first = line.first else { return heap.min?.time }
        return min(first.time, heap.min?.time ?? first.time)
    }

    /// Schedules `event` at `time`.
    public mutating func schedule(_ event: Event, at time: Instant) {
        let entry = Entry(time: time, sequence: nextSequence, event: event)
        nextSequence &+= 1
        if taken && time == current {
            line.append(entry)
        } else {
            heap.insert(entry)
        }
    }

    /// The earliest event, removed.
    public mutating func pop() -> (time: Instant, event: Event)? {
        let entry: Entry
        if let first = line.first, heap.min.map({ first < $0 }) ?? true {
            entry = line.removeFirst()
        } else if let next = heap.popMin() {
            entry = next
        } else {
            return nil
        }
        current = entry.time
        taken = true
        return (entry.time, entry.event)
    }
}
