import Dispatch
import ShoalCore

extension Simulation {
    /// Why ``run(until:maxEvents:while:)`` returned.
    public enum Stop: Sendable, Hashable {
        /// Nothing is left to happen.
        case idle
        case deadline
        case eventLimit
        /// The condition became false.
        case condition
    }

    /// Processes events in order until `deadline`, `maxEvents` events, or `condition` turns false. With one
    /// worker (or links without latency) the condition and the limit are checked after every event; with
    /// several, after every window (the least one-way delay between two nodes), so a run may go on up to
    /// a window past the event that turned the condition false.
    @discardableResult
    public func run(until deadline: Instant, maxEvents: Int = .max, while condition: (Simulation) -> Bool = { _ in true })
        -> Stop
    {
        if workers.count > 1, let latency = leastLatency, latency > .zero {
            return runInWindows(until: deadline, maxEvents: maxEvents, while: condition)
        }
        return runInTurn(until: deadline, maxEvents: maxEvents, while: condition)
    }

    /// Every event in order on this thread, whichever worker's node it happens at.
    private func runInTurn(until deadline: Instant, maxEvents: Int, while condition: (Simulation) -> Bool) -> Stop {
        var processed = 0
        if workers.count > 1 {
            for worker in workers { for parity in 0..<2 { worker.takeIncoming(parity: parity) } }
        }
        while let (key, source) = next() {
            guard key.time <= deadline else {
                now = deadline
                return .deadline
            }
            guard processed < maxEvents else { return .eventLimit }
            processed += 1
            now = key.time
            take(from: source)
            guard condition(self) else { return .condition }
        }
        return .idle
    }

    /// Windows in which the workers run their nodes at the same time, each on a thread: a message one node
    /// sends another arrives at least `window` later, so nothing a worker does inside a window can change
    /// another worker's events in it. Between windows, on this thread: the messages that cross to another
    /// worker, the scenario's calls (a window ends at the next call), what calls schedule, and the
    /// directory's events of the coming window (the directory answers a window later at the soonest, and
    /// nothing but its own events changes it).
    /// The window is set anew at each: a call may add a node with a shorter link (one without latency
    /// leaves the rest of the run to one thread).
    private func runInWindows(until deadline: Instant, maxEvents: Int, while condition: (Simulation) -> Bool) -> Stop {
        let limit = eventsProcessed.addingReportingOverflow(maxEvents)
        let box = UncheckedSendableBox(value: workers)
        var parity = workers[0].parity
        while let first = nextInWindows() {
            guard first.time <= deadline else {
                now = deadline
                return .deadline
            }
            guard limit.overflow || eventsProcessed < limit.partialValue else { return .eventLimit }
            now = first.time
            // Calls, and what calls scheduled, come before every node's event of their instant, in the order
            // one thread would take them.
            while let (key, source) = next(), key.time == first.time, key.origin == Self.callOrigin {
                take(from: source)
            }
            guard condition(self) else { return .condition }
            guard let latency = leastLatency, latency > .zero else {
                let left = limit.overflow ? Int.max : limit.partialValue - eventsProcessed
                return runInTurn(until: deadline, maxEvents: left, while: condition)
            }
            var end = first.time + latency + latency
            if let call = callQueue.nextTime { end = min(end, call) }
            if deadline < end { end = deadline + .nanoseconds(1) }
            while let time = directoryQueue.nextTime, time < end {
                now = time
                handleOwn(directoryQueue.popEntry()!)
            }
            now = first.time
            parity = 1 - parity
            for worker in workers { worker.parity = parity }
            let windowEnd = end
            DispatchQueue.concurrentPerform(iterations: box.value.count) { index in
                box.value[index].run(before: windowEnd)
            }
            for worker in workers { post(worker.takeDirectoryOutbox()) }
            now = workers.reduce(now) { max($0, $1.now) }
            guard condition(self) else { return .condition }
        }
        return .idle
    }

    /// Between windows: the next event's key, counting the messages workers have yet to take in (never
    /// a call's: those are never in a mailbox).
    private func nextInWindows() -> EventQueue<Event>.Key? {
        let queued = next()?.key
        guard let mailed = workers.compactMap(\.earliestOutgoing).min() else { return queued }
        let key = EventQueue<Event>.Key(time: mailed, origin: 0, count: 0)
        return queued.map { min($0, key) } ?? key
    }

    /// Which queue holds an event.
    private enum Source {
        case calls
        case directory
        case worker(Int)
    }

    /// The next event's key, and the queue that holds it.
    private func next() -> (key: EventQueue<Event>.Key, source: Source)? {
        var best = callQueue.nextKey.map { (key: $0, source: Source.calls) }
        if let key = directoryQueue.nextKey, best.map({ key < $0.key }) ?? true { best = (key, .directory) }
        for worker in workers {
            guard let key = worker.queue.nextKey else { continue }
            if best.map({ key < $0.key }) ?? true { best = (key, .worker(worker.index)) }
        }
        return best
    }

    /// Takes the next event from `source` and runs it.
    private func take(from source: Source) {
        switch source {
        case .calls:
            handleOwn(callQueue.popEntry()!)
        case .directory:
            handleOwn(directoryQueue.popEntry()!)
        case .worker(let index):
            let worker = workers[index]
            worker.handle(worker.queue.popEntry()!)
            post(worker.takeDirectoryOutbox())
            if workers.count > 1 { for worker in workers { worker.takeIncoming(parity: worker.parity) } }
        }
    }

    private func post(_ entries: [Entry]) {
        for entry in entries { deliver(entry) }
    }

    /// A call, or the directory at work.
    private func handleOwn(_ entry: Entry) {
        controlProcessed += 1
        switch entry.event {
        case .call(let id):
            calls.removeValue(forKey: id)?(self)
        case .listed(let node):
            directory.insert(node)
        case .unlisted(let node):
            directory.remove(node)
        case .lookup(let node):
            let others = directory.sample(configuration.announceWant, excluding: node, using: &directoryRandom)
            let answer = Entry(
                time: now + SimWorker.directoryDelay(nodes[node].link), origin: Self.directoryOrigin, count: directoryCaused,
                event: .found(node: node, peers: others))
            directoryCaused &+= 1
            deliver(answer)
        default:
            break
        }
    }
}

/// Lets the workers cross into the threads that run them: each touches only its own nodes there.
private struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
}
