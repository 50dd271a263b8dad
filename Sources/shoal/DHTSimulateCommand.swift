import ArgumentParser
import ShoalCore
import ShoalDHT
import ShoalSim

struct DHTSimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate a DHT of many Shoal nodes and measure its lookups.",
        discussion: """
            Runs real DHT node cores over simulated UDP in virtual time (deterministic from --seed): builds the \
            DHT, runs find_node lookups for random targets and checks each against the brute-force closest \
            nodes, announces and finds peers, then makes a share of the nodes leave at once and measures again. \
            Prints lookup time (simulated ms and round trips), hops, messages per lookup and memory per node.
            """)

    @Option(help: "Sizes of the DHT to simulate, comma-separated (e.g. 1000,10000,100000).")
    var nodes: String = "1000"

    @Option(help: "How the DHT is built: join (every node joins through the protocol) or prefill (tables as in a long-running DHT).")
    var build: String = "join"

    @Option(help: "Milliseconds between two nodes joining (--build join).")
    var joinInterval: Int = 10

    @Option(help: "Seconds the DHT runs after the last join.")
    var settle: Int = 120

    @Option(help: "Lookups measured before and after the departure.")
    var lookups: Int = 200

    @Option(help: "Info-hashes announced before the departure and looked up after it.")
    var announces: Int = 50

    @Option(help: "The share of nodes that leave at once.")
    var departure: Double = 0.2

    @Option(help: "One-way latency of each node's link in ms (two nodes are twice this apart).")
    var latency: Int = 25

    @Option(help: "The chance that a datagram is lost.")
    var loss: Double = 0

    @Option(help: "Seed of the run.")
    var seed: UInt64 = 1

    @Option(help: "Larger far buckets, as multiples of k (the node's default 8,4,2; libtorrent's is 16,8,4,2; none: k everywhere).")
    var farBuckets: String = "8,4,2"

    func validate() throws {
        guard sizes.allSatisfy({ $0 >= 2 && $0 < 1 << 24 }), !sizes.isEmpty else {
            throw ValidationError("--nodes: sizes from 2 to 16777215, comma-separated")
        }
        guard build == "join" || build == "prefill" else { throw ValidationError("--build is join or prefill") }
        guard (0..<1).contains(departure), (0..<1).contains(loss) else { throw ValidationError("--departure and --loss are in [0, 1)") }
    }

    var sizes: [Int] { nodes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() async throws {
        var reports: [DHTExperiment.Report] = []
        for size in sizes {
            var node = DHTNode<SplitMix64>.Configuration()
            node.routing.farBucketMultipliers = farBuckets.split(separator: ",").compactMap { Int($0) }
            let parameters = DHTExperiment.Parameters(
                nodes: size, seed: seed,
                build: build == "prefill"
                    ? .prefill : .join(interval: .milliseconds(joinInterval), settle: .seconds(settle)),
                latency: .milliseconds(latency), loss: loss, lookups: lookups, announces: announces,
                departure: departure, node: node)
            let report = DHTExperiment.run(parameters) { Terminal.writeStderr("N=\(size): \($0)\n") }
            Self.print(report)
            reports.append(report)
        }
        Self.printTable(reports)
    }

    static func print(_ report: DHTExperiment.Report) {
        let p = report.parameters
        func phase(_ name: String, _ s: DHTExperiment.LookupStatistics) {
            Terminal.line(
                "  \(name): \(s.count) lookups, exact k closest \(percent(s.exact, s.count)), closest found "
                    + "\(percent(s.foundClosest, s.count)), k-closest share \(Terminal.fixed(s.closestShare * 100, 1))%")
            Terminal.line(
                "    time: median \(Terminal.fixed(s.medianMilliseconds, 0)) ms (\(Terminal.fixed(s.medianRoundTrips, 2)) RTT), "
                    + "p90 \(Terminal.fixed(s.p90Milliseconds, 0)) ms (\(Terminal.fixed(s.p90RoundTrips, 2)) RTT), "
                    + "max \(Terminal.fixed(s.maxMilliseconds, 0)) ms (\(Terminal.fixed(s.maxRoundTrips, 2)) RTT); hops median "
                    + "\(Terminal.fixed(s.medianHops, 1)), max \(s.maxHops); per lookup \(Terminal.fixed(s.meanQueries, 1)) "
                    + "queries, \(Terminal.fixed(s.meanDatagrams, 1)) datagrams, \(Terminal.fixed(s.meanTimeouts, 1)) timeouts")
        }
        Terminal.line(
            "N = \(p.nodes), \(p.build), \(table(report)), RTT \(Int(report.roundTrip.seconds * 1000)) ms, loss \(p.loss), seed \(p.seed): "
                + "\(Terminal.fixed(report.meanTableSize, 1)) nodes per table, \(Int(report.bytesPerNode)) bytes per node")
        phase("before departure", report.before)
        phase("after \(Int(p.departure * 100))% left", report.after)
        Terminal.line(
            "  peers found after the departure: \(report.peersFoundAfterDeparture) of \(report.announced) announced info-hashes")
        Terminal.line(
            "  \(report.eventsProcessed) events, \(report.datagrams) datagrams, \(Terminal.fixed(report.simulatedSeconds, 0)) "
                + "simulated s in \(Terminal.fixed(report.wallSeconds, 1)) s")
    }

    static func printTable(_ reports: [DHTExperiment.Report]) {
        Terminal.line("")
        Terminal.line("| N | build | median RTT | p90 RTT | max RTT | median ms | hops | datagrams/lookup | exact | after departure: exact, closest found, max RTT | peers found | bytes/node |")
        Terminal.line("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for report in reports {
            let b = report.before
            let a = report.after
            Terminal.line(
                "| \(report.parameters.nodes) | \(report.parameters.build), \(Self.table(report)) | \(Terminal.fixed(b.medianRoundTrips, 2)) | "
                    + "\(Terminal.fixed(b.p90RoundTrips, 2)) | \(Terminal.fixed(b.maxRoundTrips, 2)) | "
                    + "\(Terminal.fixed(b.medianMilliseconds, 0)) | \(Terminal.fixed(b.medianHops, 1)) | "
                    + "\(Terminal.fixed(b.meanDatagrams, 1)) | \(percent(b.exact, b.count)) | \(percent(a.exact, a.count)), "
                    + "\(percent(a.foundClosest, a.count)), \(Terminal.fixed(a.maxRoundTrips, 2)) | "
                    + "\(report.peersFoundAfterDeparture)/\(report.announced) | \(Int(report.bytesPerNode)) |")
        }
    }

    /// The routing table's shape: Shoal's larger far buckets, or the textbook one.
    static func table(_ report: DHTExperiment.Report) -> String {
        let multipliers = report.parameters.node.routing.farBucketMultipliers
        return multipliers.isEmpty
            ? "textbook table (k = 8)" : "far buckets " + multipliers.map { "\($0 * 8)" }.joined(separator: "/")
    }

    static func percent(_ part: Int, _ whole: Int) -> String {
        whole == 0 ? "-" : "\(Terminal.fixed(Double(part) * 100 / Double(whole), 1))%"
    }
}
