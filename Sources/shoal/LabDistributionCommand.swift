import ArgumentParser
import Foundation
import ShoalCore
import ShoalLab
import ShoalSim

struct LabDistributionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distribution",
        abstract: "Client-server versus peer-to-peer distribution time, against the lecture's bounds.",
        discussion: """
            For each swarm size N: the lecture's bounds d_cs = max(N·F/u_s, F/d_min) and \
            d_P2P = max(F/u_s, F/d_min, N·F/(u_s + N·u)), and the time until the last of N peers has the \
            file, measured in the simulator with the real engine: client-server (peers know only the seed, \
            upload nothing and leave when done) and peer-to-peer (peers find 50 others, trade with \
            rarest-first, tit-for-tat choking and pipelining, and stay). The defaults are the lecture's: \
            F/u = 1 hour, u_s = 10u, d_min = u_s. Writes distribution.csv, distribution.md, distribution.svg \
            and, when rsvg-convert or ImageMagick is installed, distribution.png.

            --real also runs real `shoal` processes on 127.0.0.1 (N ≤ 16) with upload limits, peer-to-peer, \
            to check the simulator against reality; give it rates that finish in minutes, e.g. \
            --file-size 32M --peer-upload 1M.
            """)

    @Option(help: "F, the file's size, e.g. 16M.")
    var fileSize: ByteCount = ByteCount(bytes: 16 << 20)

    @Option(help: "u, every peer's upload per second (default: F per hour).")
    var peerUpload: ByteCount?

    @Option(help: "u_s, the seed's upload per second (default: 10u).")
    var serverUpload: ByteCount?

    @Option(help: "d_min, every peer's download per second (default: u_s).")
    var minDownload: ByteCount?

    @Option(help: "The swarm sizes N, comma-separated.")
    var peers: String = "1,2,5,10,15,20,25,30,35"

    @Option(help: "Runs per N, each from its own seed.")
    var runs: Int = 1

    @Option(help: "Bytes per piece.")
    var pieceLength: ByteCount = ByteCount(bytes: 64 << 10)

    @Option(help: "Simulate client-server only up to this N (its virtual time grows as N·F/u_s).")
    var clientServerMax: Int = 1000

    @Option(help: "The first run's seed.")
    var seed: UInt64 = 1

    @Option(help: "Simulations run at once (default: one per core); each runs on one core.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(
        help: """
            Threads each simulation runs on, its nodes split between them; the result is the same (default: \
            the cores left over by --jobs for N ≥ 1000, else 1).
            """)
    var threads: Int?

    @Flag(help: "Also run real shoal processes on loopback (N ≤ 16), peer-to-peer.")
    var real = false

    @Option(help: "Write the table and plot into this directory.")
    var out: String = "lab-distribution"

    func validate() throws {
        guard runs >= 1 && runs <= 100 else { throw ValidationError("--runs must be between 1 and 100") }
        guard (1...(1 << 30)).contains(fileSize.bytes) else { throw ValidationError("--file-size must be between 1 B and 1 GiB") }
        guard pieceLength.bytes >= 16384, pieceLength.bytes % 16384 == 0, pieceLength.bytes <= 16 << 20 else {
            throw ValidationError("--piece-length must be a multiple of 16 KiB, at most 16 MiB")
        }
        guard let sizes = swarmSizes, !sizes.isEmpty, sizes.allSatisfy({ (1...100_000).contains($0) }) else {
            throw ValidationError("--peers: numbers from 1 to 100000, comma-separated")
        }
        guard (1...256).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 256") }
        if let threads, !(1...64).contains(threads) { throw ValidationError("--threads must be between 1 and 64") }
        for rate in [peerUpload, serverUpload, minDownload] {
            if let rate, rate.bytes <= 0 { throw ValidationError("rates must be positive") }
        }
    }

    private var swarmSizes: [Int]? {
        let parts = peers.split(separator: ",").map { Int($0.filter { $0 != " " }) }
        return parts.contains(nil) ? nil : Array(Set(parts.compactMap { $0 })).sorted()
    }

    func run() async throws {
        let sizes = swarmSizes ?? []
        let file = Double(fileSize.bytes)
        let u = Double(peerUpload?.bytes ?? max(1, Int64((file / 3600).rounded())))
        let us = Double(serverUpload?.bytes ?? Int64(10 * u))
        let d = Double(minDownload?.bytes ?? Int64(us))
        let bounds = DistributionBounds(fileSize: file, serverUpload: us, peerUpload: u, minDownload: d)
        let experiment = DistributionSimulation(bounds: bounds, pieceLength: Int(pieceLength.bytes))
        let content = SimContent(length: fileSize.bytes, pieceLength: Int(pieceLength.bytes), seed: seed)
        print(DistributionReport(measurements: [], bounds: bounds, runsPerSize: runs).parameterLine)

        var measurements: [DistributionMeasurement] = []
        var notes: [String] = []
        let clock = ContinuousClock()
        let started = clock.now
        let results = await simulate(sizes: sizes, experiment: experiment, content: content, bounds: bounds)
        let largestSwarm = results.values.map(\.result.simulatedPeers).max() ?? 0
        for n in sizes {
            var measurement = DistributionMeasurement(
                peers: n, clientServerBound: bounds.clientServer(peers: n), peerToPeerBound: bounds.peerToPeer(peers: n))
            for run in 0..<runs {
                if let time = results[SimulationJob(peers: n, run: run, mode: .peerToPeer)]?.result.time {
                    measurement.peerToPeer.append(time)
                }
                if let time = results[SimulationJob(peers: n, run: run, mode: .clientServer)]?.result.time {
                    measurement.clientServer.append(time)
                }
            }
            if real && RealDistributionRun.leecherRange.contains(n) {
                measurement.realPeerToPeer = try await runReal(peers: n, bounds: bounds)
            }
            measurements.append(measurement)
        }
        let elapsed = clock.now - started
        notes.append("Simulated with the real engine (ShoalSim), seed \(seed), \(Int(pieceLength.bytes / 1024)) KiB pieces, 25 ms latency per access link.")
        notes.append("Simulation time \(Self.seconds(elapsed)) on this machine.")
        if let peak = Self.peakMemory(), largestSwarm > 0 {
            let together = min(jobs, results.count)
            notes.append(
                "Peak memory \(String(format: "%.1f", Double(peak) / 1_048_576)) MiB for at most \(largestSwarm) "
                    + "simulated peers (at most \(String(format: "%.0f", Double(peak) / 1024 / Double(largestSwarm))) KiB per peer, "
                    + "the process, the shared content"
                    + (together == 2 ? " and the other simulation running beside it" : "")
                    + (together > 2 ? " and the \(together - 1) other simulations running beside it" : "") + " included).")
        }
        if clientServerMax < sizes.last ?? 0 {
            notes.append("Client-server simulated up to N = \(clientServerMax) (--client-server-max).")
        }
        let report = DistributionReport(measurements: measurements, bounds: bounds, runsPerSize: runs, notes: notes)
        let written = try report.write(to: URL(fileURLWithPath: out))
        print("")
        print(report.markdown)
        for path in written.paths { print("Wrote \(path.path)") }
        if !written.png.didConvert { print("No PNG: \(written.png)") }
    }

    /// One simulated run: a swarm size, a run number (its seed), a mode.
    private struct SimulationJob: Hashable, Sendable {
        var peers: Int
        var run: Int
        var mode: DistributionSimulation.Mode
    }

    /// Runs every simulation, `--jobs` at a time (each one is single-threaded), the largest first so that
    /// the smaller ones fill the other cores beside it; prints a line as each one ends.
    private func simulate(
        sizes: [Int], experiment: DistributionSimulation, content: SimContent, bounds: DistributionBounds
    ) async -> [SimulationJob: (result: DistributionSimulation.Result, took: Duration)] {
        var pending: [SimulationJob] = []
        for n in sizes.reversed() {
            for run in 0..<runs {
                pending.append(SimulationJob(peers: n, run: run, mode: .peerToPeer))
                if n <= clientServerMax { pending.append(SimulationJob(peers: n, run: run, mode: .clientServer)) }
            }
        }
        var results: [SimulationJob: (result: DistributionSimulation.Result, took: Duration)] = [:]
        let seed = self.seed
        // Several threads pay only with thousands of peers: a window (50 ms of virtual time) then holds
        // thousands of events. Below that, and when other simulations wait for the cores, one each.
        let spare = max(1, jobs / max(1, pending.count))
        let threads = self.threads
        await withTaskGroup(of: (SimulationJob, DistributionSimulation.Result, Duration).self) { group in
            var next = pending.startIndex
            func startNext() {
                guard next < pending.endIndex else { return }
                let job = pending[next]
                next += 1
                var experiment = experiment
                experiment.partitions = threads ?? (job.peers >= 1000 ? spare : 1)
                group.addTask { [experiment] in
                    let clock = ContinuousClock()
                    let start = clock.now
                    let result = experiment.run(
                        peers: job.peers, mode: job.mode, seed: seed &+ UInt64(job.run), content: content)
                    return (job, result, clock.now - start)
                }
            }
            for _ in 0..<jobs { startNext() }
            while let (job, result, took) = await group.next() {
                results[job] = (result, took)
                let bound =
                    job.mode == .peerToPeer ? bounds.peerToPeer(peers: job.peers) : bounds.clientServer(peers: job.peers)
                let name = job.mode == .peerToPeer ? "P2P" : "client-server"
                print("N=\(job.peers) run \(job.run + 1): \(name) \(Self.describe(result, bound: bound)) in \(Self.seconds(took))")
                startNext()
            }
        }
        return results
    }

    /// Real shoal processes on loopback, peer-to-peer, one run per --runs.
    private func runReal(peers n: Int, bounds: DistributionBounds) async throws -> [Double] {
        var times: [Double] = []
        for run in 0..<runs {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-lab-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let experiment = RealDistributionRun(
                shoalExecutable: Self.executablePath(), workDirectory: directory.path, fileSize: Int(fileSize.bytes),
                pieceLength: Int(pieceLength.bytes), peerUpload: Int(bounds.peerUpload),
                serverUpload: Int(bounds.serverUpload), leechers: n, mode: .peerToPeer)
            let result = try await experiment.run()
            let time = result.distributionTime
            times.append(time)
            print("N=\(n) run \(run + 1): real P2P \(Self.format(time)) s, \(Self.format(result.ratio))x d_P2P")
        }
        return times
    }

    private static func describe(_ result: DistributionSimulation.Result, bound: Double) -> String {
        let events = "\(result.events) events"
        guard let time = result.time else { return "unfinished (\(result.finished) done, \(events))" }
        return "\(format(time)) s = \(format(time / bound))x bound, seed busy \(Int((100 * result.seedUtilisation).rounded()))%, \(events)"
    }

    private static func format(_ value: Double) -> String {
        String(format: "%.3f", value)
    }

    private static func seconds(_ duration: Duration) -> String {
        format(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) + " s"
    }

    /// This process's peak resident memory (VmHWM), in bytes.
    private static func peakMemory() -> Int64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Int64(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kib * 1024
    }

    /// This very executable, to start real peers with.
    private static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
