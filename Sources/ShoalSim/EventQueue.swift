import DequeModule
import HeapModule
import ShoalCore

/// Events waiting for their virtual time, taken in order of (time, origin, count): two events due at the
/// same instant come out in the order of their origins, and of one origin in the order it scheduled them,
/// so a run depends on nothing but its seed. ``schedule(_:at:)`` gives every event origin 0 and the next
/// count, which is the order of scheduling; a simulation split over several queues gives each event the
/// node that caused it as its origin and that node's count, so that every split takes a node's events in
/// the same order.
///
/// Events due at the instant of the last one taken (a disk that takes no time, a write that has left)
/// are a fifth of a swarm's: they wait in a first-in-first-out line beside the heap, in the order the heap
/// would give them (an event that would come before the line's last goes into the heap instead), and
/// `pop` takes from whichever holds the earlier. The line holds events of one instant only: time moves
/// on only once it is empty.
public struct EventQueue<Event> {
    /// An event and its place in the order.
    struct Entry: Comparable {
        var key: Key
        var event: Event

        var time: Instant { key.time }

        init(time: Instant, origin: Int, count: UInt64, event: Event) {
            self.key = Key(time: time, origin: origin, count: count)
            self.event = event
        }

        static func < (lhs: Entry, rhs: Entry) -> Bool { lhs.key < rhs.key }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.key == rhs.key }
    }

    /// Where an event stands in the order, without the event.
    struct Key: Comparable {
        var time: Instant
        var origin: Int
        var count: UInt64

        static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.time, lhs.origin, lhs.count) < (rhs.time, rhs.origin, rhs.count)
        }
    }

    private var heap = Heap<Entry>()
    /// Events due at `current`, in order.
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

    /// The key of the next event.
    var nextKey: Key? {
        guard let first = line.first?.key else { return heap.min?.key }
        guard let least = heap.min?.key else { return first }
        return min(first, least)
    }

    /// Schedules `event` at `time`, after every event scheduled before it for that time.
    public mutating func schedule(_ event: Event, at time: Instant) {
        insert(Entry(time: time, origin: 0, count: nextSequence, event: event))
        nextSequence &+= 1
    }

    /// Schedules an event whose place among those of its instant its origin and count give.
    mutating func insert(_ entry: Entry) {
        if taken && entry.time == current && (line.last.map { $0 < entry } ?? true) {
            line.append(entry)
        } else {
            heap.insert(entry)
        }
    }

    /// The earliest event, removed.
    public mutating func pop() -> (time: Instant, event: Event)? {
        popEntry().map { ($0.time, $0.event) }
    }

    /// The earliest event with its key, removed.
    mutating func popEntry() -> Entry? {
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
        return entry
    }
}
