import ShoalCore

/// Runs the events of one share of a ``Simulation``'s nodes (node `i` belongs to worker
/// `i % partitions`), with its own queue and clock. It changes only its own nodes; what it sends to a node
/// of another worker waits in a mailbox that worker empties when the next window starts, and what it sends
/// to the directory waits until the simulation hands it on between windows (both are due at least a
/// window later).
final class SimWorker {
    typealias Event = Simulation.Event
    typealias Entry = Simulation.Entry

    let index: Int
    let partitions: Int
    let configuration: Simulation.Configuration
    /// This worker's copy of the content, which its nodes read blocks from.
    let content: SimContent
    /// Every node of the simulation (those of other workers only to address messages to them).
    var nodes: [Simulation.Node] = []
    /// Every node's link, by node (read for the delay to any node without touching the node).
    var links: [SimLink] = []
    var queue = EventQueue<Event>()
    var now = Instant.zero
    var eventsProcessed = 0
    /// Nodes of this worker that finished.
    var finishedCount = 0
    /// The node whose event is being handled (and its index): what it schedules counts as caused by it.
    var origin: Simulation.Node!
    var originIndex = 0
    /// What this worker's nodes send to the directory, handed on between windows.
    private var directoryOutbox: [Entry] = []
    /// What its nodes send to other workers' nodes, by the window's parity and the other worker: written in
    /// one window, taken by the other worker at the start of the next (while this one writes the other parity).
    var outgoing: [[Mailbox]] = []
    /// What other workers' nodes send to this one's, by parity and sender.
    var incoming: [[Mailbox]] = []
    /// The parity of the current window.
    var parity = 0

    /// Messages from one worker to another, in one parity.
    final class Mailbox {
        var entries: [Entry] = []
        /// The earliest entry's time.
        var earliest: Instant?
    }

    init(index: Int, partitions: Int, configuration: Simulation.Configuration, content: SimContent) {
        self.index = index
        self.partitions = partitions
        self.configuration = configuration
        self.content = content
    }

    /// Takes in what other workers sent in the last window (and between windows), then handles every event
    /// due before `end`.
    func run(before end: Instant) {
        takeIncoming(parity: 1 - parity)
        while let key = queue.nextKey, key.time < end {
            handle(queue.popEntry()!)
        }
    }

    /// Moves what other workers sent in `parity` into the queue.
    func takeIncoming(parity: Int) {
        for mailbox in incoming[parity] where !mailbox.entries.isEmpty {
            for entry in mailbox.entries { queue.insert(entry) }
            mailbox.entries.removeAll(keepingCapacity: true)
            mailbox.earliest = nil
        }
    }

    /// When the earliest message this worker sent to another is due.
    var earliestOutgoing: Instant? {
        outgoing.joined().compactMap(\.earliest).min()
    }

    /// What was sent to the directory, taken.
    func takeDirectoryOutbox() -> [Entry] {
        guard !directoryOutbox.isEmpty else { return [] }
        defer { directoryOutbox = [] }
        return directoryOutbox
    }

    /// Schedules `event` (at its node, or at the directory) as caused by the node being handled.
    func post(_ event: Event, at time: Instant) {
        let entry = Entry(time: time, origin: originIndex, count: origin.caused, event: event)
        origin.caused &+= 1
        let target = event.node
        if target < 0 {
            directoryOutbox.append(entry)
            return
        }
        let worker = target % partitions
        if worker == index {
            queue.insert(entry)
        } else {
            let mailbox = outgoing[parity][worker]
            mailbox.entries.append(entry)
            mailbox.earliest = min(mailbox.earliest ?? time, time)
        }
    }

    /// One way between the directory and a node: as if the directory sat behind a link like the node's.
    static func directoryDelay(_ link: SimLink) -> Interval { link.latency + link.latency }

    /// One way from `a` to `b`: both access links' latency, plus jitter and, for a lost chunk, a
    /// retransmission timeout (drawn from the sender's random numbers).
    func delay(from a: Int, to b: Int) -> Interval {
        var delay = links[a].latency + links[b].latency
        let jitter = max(links[a].jitter.nanoseconds, links[b].jitter.nanoseconds)
        let loss = 1 - (1 - links[a].loss) * (1 - links[b].loss)
        guard jitter > 0 || loss > 0 else { return delay }
        let node = nodes[a]
        if jitter > 0 { delay = delay + .nanoseconds(Int64(node.random.next() % UInt64(jitter))) }
        if loss > 0, Double(node.random.next() >> 11) / Double(1 << 53) < loss {
            delay = delay + configuration.retransmissionTimeout
        }
        return delay
    }
}
