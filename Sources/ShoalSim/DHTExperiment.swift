#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ShoalCore
import ShoalDHT

/// One measured run of a simulated DHT: build it, run lookups for random targets from random nodes and check
/// each against the brute-force closest nodes, announce and find peers, then let a share of the nodes leave
/// at once and measure again. `shoal dht simulate` and `bench/dht` print its ``Report``; the tests check it.
public enum DHTExperiment {
    public enum Build: Sendable, Hashable, CustomStringConvertible {
        /// Every node joins through the protocol (a find_node for its own id through a node that joined
        /// before it), one every `interval`; then the DHT runs `settle` longer.
        case join(interval: Interval, settle: Interval)
        /// Tables filled as in a long-running DHT (``DHTSimulation/prefillRoutingTables(perBucket:)``).
        case prefill

        public var description: String {
            switch self {
            case .join(let interval, _): "joined (one every \(Int(interval.seconds * 1000)) ms)"
            case .prefill: "prefilled tables"
            }
        }
    }

    public struct Parameters: Sendable {
        public var nodes: Int
        public var seed: UInt64
        public var build: Build
        /// One-way latency of each node's access link (two nodes are twice this apart).
        public var latency: Interval
        public var loss: Double
        /// find_node lookups measured, before and after the departure.
        public var lookups: Int
        /// Info-hashes announced before the departure and looked up after it.
        public var announces: Int
        /// The share of nodes that leave at once (0: none).
        public var departure: Double
        public var node: DHTNode<SplitMix64>.Configuration

        public init(
            nodes: Int, seed: UInt64 = 1, build: Build = .prefill, latency: Interval = .milliseconds(25),
            loss: Double = 0, lookups: Int = 200, announces: Int = 50, departure: Double = 0.2,
            node: DHTNode<SplitMix64>.Configuration = .init()
        ) {
            self.nodes = nodes
            self.seed = seed
            self.build = build
            self.latency = latency
            self.loss = loss
            self.lookups = lookups
            self.announces = announces
            self.departure = departure
            self.node = node
        }
    }

    /// Lookups of one phase, summarised.
    public struct LookupStatistics: Sendable, Hashable {
        public var count = 0
        /// Lookups that ended on exactly the k closest alive nodes.
        public var exact = 0
        /// Lookups whose result holds the closest alive node.
        public var foundClosest = 0
        /// Of the k closest alive nodes, the share the results held (over all lookups).
        public var closestShare = 0.0
        public var medianMilliseconds = 0.0
        public var p90Milliseconds = 0.0
        public var maxMilliseconds = 0.0
        /// Durations divided by the round-trip time between two nodes.
        public var medianRoundTrips = 0.0
        public var p90RoundTrips = 0.0
        public var maxRoundTrips = 0.0
        public var medianHops = 0.0
        public var maxHops = 0
        /// Queries sent per lookup, and datagrams (queries and answers) per lookup.
        public var meanQueries = 0.0
        public var meanDatagrams = 0.0
        public var meanTimeouts = 0.0
    }

    public struct Report: Sendable {
        public var parameters: Parameters
        public var roundTrip: Interval
        /// Nodes in routing tables, per node, after building.
        public var meanTableSize = 0.0
        public var before = LookupStatistics()
        public var after = LookupStatistics()
        /// Announced info-hashes found (with the announcing peer) after the departure.
        public var peersFoundAfterDeparture = 0
        public var announced = 0
        /// Resident memory grown while the nodes were made and built, per node.
        public var bytesPerNode = 0.0
        public var eventsProcessed = 0
        public var datagrams = 0
        public var datagramsLost = 0
        public var wallSeconds = 0.0
        public var simulatedSeconds = 0.0
    }

    public static func run(_ parameters: Parameters, progress: (String) -> Void = { _ in }) -> Report {
        let wallStart = wallClock()
        let residentBefore = residentBytes()
        let simulation = DHTSimulation(
            configuration: .init(seed: parameters.seed, latency: parameters.latency, loss: parameters.loss, node: parameters.node),
            nodeCount: parameters.nodes)
        var random = SplitMix64(seed: parameters.seed ^ 0x5EED)
        switch parameters.build {
        case .prefill:
            simulation.prefillRoutingTables()
            simulation.run(until: simulation.now + .seconds(1))
        case .join(let interval, let settle):
            simulation.scheduleJoins(every: interval)
            let end = simulation.now + interval * Int64(parameters.nodes) + settle
            var mark = simulation.now
            while mark < end {
                mark = min(end, mark + .seconds(60))
                simulation.run(until: mark)
                progress("joining: \(Int((mark - .zero).seconds)) of \(Int((end - .zero).seconds)) simulated seconds")
            }
        }
        var report = Report(parameters: parameters, roundTrip: parameters.latency * 4)
        report.bytesPerNode = Double(max(0, residentBytes() - residentBefore)) / Double(parameters.nodes)
        report.meanTableSize =
            Double((0..<parameters.nodes).reduce(0) { $0 + simulation.core($1).table(.ipv4).count }) / Double(parameters.nodes)
        progress("built: \(Int(report.meanTableSize)) nodes per table, \(Int(report.bytesPerNode)) bytes per node")

        report.before = measureLookups(simulation, count: parameters.lookups, random: &random, roundTrip: report.roundTrip)
        progress("lookups measured")

        // Announces from nodes that stay; the DHT stores them on the nodes closest to each info-hash.
        var announcers: [(infoHash: NodeID, node: Int)] = []
        var firstRecord = simulation.lookups.count
        for _ in 0..<parameters.announces {
            let infoHash = NodeID.random(using: &random)
            let node = randomAlive(simulation, random: &random)
            if simulation.startLookup(.announce(port: 6881, impliedPort: false), target: infoHash, from: node) != nil {
                announcers.append((infoHash, node))
            }
            simulation.run(until: simulation.now + .milliseconds(10))
        }
        simulation.runUntilLookupsFinish(limit: .seconds(120))
        report.announced = simulation.lookups[firstRecord...].filter { ($0.result?.announced ?? 0) > 0 }.count

        if parameters.departure > 0 {
            let keep = Set(announcers.map(\.node))
            let candidates = (0..<parameters.nodes).filter { !keep.contains($0) && simulation.isAlive($0) }
            var chosen = candidates
            chosen.shuffle(using: &random)
            simulation.leave(chosen.prefix(Int(Double(parameters.nodes) * parameters.departure)))
            progress("\(simulation.nodeCount - simulation.aliveCount) nodes left")
        }
        report.after = measureLookups(simulation, count: parameters.lookups, random: &random, roundTrip: report.roundTrip)

        firstRecord = simulation.lookups.count
        for (infoHash, _) in announcers {
            simulation.startLookup(.getPeers, target: infoHash, from: randomAlive(simulation, random: &random))
            simulation.run(until: simulation.now + .milliseconds(10))
        }
        simulation.runUntilLookupsFinish(limit: .seconds(120))
        for (offset, (_, node)) in announcers.enumerated() {
            let address = DHTSimulation.address(of: node).peerAddress
            if simulation.peersFound[firstRecord + offset]?.contains(address) == true { report.peersFoundAfterDeparture += 1 }
        }
        report.eventsProcessed = simulation.eventsProcessed
        report.datagrams = simulation.datagramsSent
        report.datagramsLost = simulation.datagramsLost
        report.simulatedSeconds = (simulation.now - .zero).seconds
        report.wallSeconds = wallClock() - wallStart
        return report
    }

    /// `count` find_node lookups for random targets from random alive nodes, started 10 ms apart, each checked
    /// against the brute-force closest alive nodes.
    static func measureLookups(
        _ simulation: DHTSimulation, count: Int, random: inout SplitMix64, roundTrip: Interval
    ) -> LookupStatistics {
        let first = simulation.lookups.count
        var targets: [Int: NodeID] = [:]
        for _ in 0..<count {
            let target = NodeID.random(using: &random)
            if let record = simulation.startLookup(.findNode, target: target, from: randomAlive(simulation, random: &random)) {
                targets[record] = target
            }
            simulation.run(until: simulation.now + .milliseconds(10))
        }
        simulation.runUntilLookupsFinish(limit: .seconds(300))
        var statistics = LookupStatistics()
        var durations: [Double] = []
        var hops: [Int] = []
        var share = 0.0
        let k = simulation.shared.configuration.lookup.closestCount
        for record in first..<simulation.lookups.count {
            guard let result = simulation.lookups[record].result, let target = targets[record] else { continue }
            statistics.count += 1
            let truth = simulation.trueClosest(to: target, count: k)
            let found = Set(result.closest.map(\.id))
            if result.closest.map(\.id) == truth.map(\.id) { statistics.exact += 1 }
            if let closest = truth.first, found.contains(closest.id) { statistics.foundClosest += 1 }
            share += Double(truth.filter { found.contains($0.id) }.count) / Double(max(1, truth.count))
            durations.append(result.duration.seconds * 1000)
            hops.append(result.hops)
            statistics.meanQueries += Double(result.queries)
            statistics.meanDatagrams += Double(result.queries + result.responses)
            statistics.meanTimeouts += Double(result.timeouts)
        }
        guard statistics.count > 0 else { return statistics }
        let n = Double(statistics.count)
        statistics.closestShare = share / n
        statistics.meanQueries /= n
        statistics.meanDatagrams /= n
        statistics.meanTimeouts /= n
        durations.sort()
        hops.sort()
        let rtt = roundTrip.seconds * 1000
        statistics.medianMilliseconds = percentile(durations, 0.5)
        statistics.p90Milliseconds = percentile(durations, 0.9)
        statistics.maxMilliseconds = durations.last ?? 0
        statistics.medianRoundTrips = statistics.medianMilliseconds / rtt
        statistics.p90RoundTrips = statistics.p90Milliseconds / rtt
        statistics.maxRoundTrips = statistics.maxMilliseconds / rtt
        statistics.medianHops = percentile(hops.map(Double.init), 0.5)
        statistics.maxHops = hops.last ?? 0
        return statistics
    }

    static func randomAlive(_ simulation: DHTSimulation, random: inout SplitMix64) -> Int {
        while true {
            let index = random.next(upTo: simulation.nodeCount)
            if simulation.isAlive(index) { return index }
        }
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let position = fraction * Double(sorted.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(sorted.count - 1, low + 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }

    /// Resident set size of this process (Linux /proc/self/statm; 0 elsewhere).
    public static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = fread(&buffer, 1, buffer.count, file)
        let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func wallClock() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
