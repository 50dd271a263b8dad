import Foundation
import ShoalProcess

/// One real-process distribution experiment: a seed and N leechers, each a `shoal` process on
/// loopback with an upload cap, timed against the lecture's bounds.
///
/// `run()` writes a random file of `fileSize` bytes into the work directory, makes its torrent with
/// `shoal create`, starts `shoal seed` capped at u_s, and once it listens starts every leecher
/// (`shoal get`) at the same moment, each on its own free loopback port. Peer-to-peer: every leecher is
/// given the seed and every other leecher, uploads at most u and keeps seeding after it completes
/// (`--seed`). Client-server: every leecher is given only the seed, so nobody uploads but the seed.
/// It waits (looking every 25 ms, at most `deadline`) until each leecher prints its completion line,
/// stops every process by its PID (SIGTERM, then SIGKILL), and checks each download against the source.
/// Downloads are not capped, so d_min is infinite and the bounds are the upload terms alone.
public struct RealDistributionRun: Sendable, Hashable {
    /// Whether the leechers trade pieces.
    public enum Mode: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Every leecher knows the seed and every other leecher, uploads at most u and keeps seeding.
        case peerToPeer = "p2p"
        /// Every leecher knows only the seed: nobody uploads but the seed.
        case clientServer = "cs"

        public var description: String { rawValue }
    }

    /// The numbers of leechers a run may have.
    public static let leecherRange = 1...16
    /// How often the leechers' output is read while waiting for them.
    static let pollInterval = Duration.milliseconds(25)

    /// The path of the `shoal` executable.
    public var shoalExecutable: String
    /// A directory for the run's files (the source, the torrent, the downloads, the processes' logs);
    /// made when missing. The caller removes it.
    public var workDirectory: String
    /// F, in bytes.
    public var fileSize: Int
    /// The torrent's piece length, in bytes (a multiple of 16 KiB).
    public var pieceLength: Int
    /// u, every leecher's upload cap in bytes per second (used in peer-to-peer mode).
    public var peerUpload: Int
    /// u_s, the seed's upload cap in bytes per second.
    public var serverUpload: Int
    /// N, the number of leechers.
    public var leechers: Int
    public var mode: Mode

    public init(
        shoalExecutable: String, workDirectory: String, fileSize: Int, pieceLength: Int, peerUpload: Int,
        serverUpload: Int, leechers: Int, mode: Mode
    ) {
        self.shoalExecutable = shoalExecutable
        self.workDirectory = workDirectory
        self.fileSize = fileSize
        self.pieceLength = pieceLength
        self.peerUpload = peerUpload
        self.serverUpload = serverUpload
        self.leechers = leechers
        self.mode = mode
    }

    /// The lecture's bounds for this run: downloads are not capped (d_min is infinite).
    public var bounds: DistributionBounds {
        DistributionBounds(
            fileSize: Double(fileSize), serverUpload: Double(serverUpload), peerUpload: Double(peerUpload),
            minDownload: .infinity)
    }

    /// The bound of the run's mode, in seconds: d_P2P or d_cs.
    public var bound: Double {
        switch mode {
        case .peerToPeer: bounds.peerToPeer(peers: leechers)
        case .clientServer: bounds.clientServer(peers: leechers)
        }
    }

    /// How long the leechers may take: 5 × the bound + 30 s.
    public var deadline: Duration {
        .milliseconds(Int64(((5 * bound + 30) * 1000).rounded(.up)))
    }

    /// Runs the experiment; see the type's description.
    public func run() async throws(RealDistributionError) -> RealDistributionResult {
        try validate()
        let seedDirectory = workDirectory + "/seed"
        let logDirectory = workDirectory + "/logs"
        let source = seedDirectory + "/data.bin"
        let torrent = workDirectory + "/data.torrent"
        do {
            try FileManager.default.createDirectory(atPath: seedDirectory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        } catch {
            throw RealDistributionError(code: .fileSystem, message: "cannot make \(seedDirectory): \(error)")
        }
        var random = SystemRandomNumberGenerator()
        try LabFiles.writeRandom(size: fileSize, to: source, using: &random)
        // Reading and hashing the data (in `shoal create` and the seed's check) at 50 MB/s or better.
        let setupLimit = Duration.seconds(60 + fileSize / 50_000_000)
        try await createTorrent(of: source, at: torrent, logDirectory: logDirectory, timeout: setupLimit)

        let ports: [Int]
        do {
            ports = try LoopbackPorts.free(leechers + 1)
        } catch {
            throw RealDistributionError(code: .launchFailed, message: error.description)
        }
        // The safety net of every process: it outlives the run's own limits, which stop it first.
        let lifetime = setupLimit + deadline + .seconds(60)
        let seed = try launch(
            name: "seed", executable: shoalExecutable,
            arguments: [
                "seed", torrent, "--data", seedDirectory, "--port", "\(ports[0])", "--max-upload", "\(serverUpload)",
            ],
            logDirectory: logDirectory, lifetime: lifetime)
        var leecherProcesses: [BackgroundProcess] = []
        defer {
            seed.stop()
            for leecher in leecherProcesses { leecher.stop() }
        }
        try await waitUntilListening(seed, timeout: setupLimit)

        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<leechers {
            leecherProcesses.append(
                try launch(
                    name: "leecher \(index + 1)", executable: shoalExecutable,
                    arguments: leecherArguments(index, torrent: torrent, ports: ports),
                    logDirectory: logDirectory, lifetime: lifetime))
        }
        let completionTimes = try await waitForCompletion(
            of: leecherProcesses, seed: seed, since: start, clock: clock)

        // Stopped now, the seed prints what it uploaded until the last leecher completed.
        seed.stop()
        for leecher in leecherProcesses { leecher.stop() }
        let seedUploaded = ShoalOutput.transferTotals(seed.standardOutput)?.uploaded
        let leecherUploaded = leecherProcesses.map { ShoalOutput.transferTotals($0.standardOutput)?.uploaded }

        for index in 0..<leechers {
            if let difference = LabFiles.difference(of: downloadDirectory(index) + "/data.bin", from: source) {
                throw RealDistributionError(code: .dataMismatch, process: "leecher \(index + 1)", message: difference)
            }
        }
        return RealDistributionResult(
            mode: mode, completionTimes: completionTimes, bound: bound, serverUpload: Double(serverUpload),
            seedUploaded: seedUploaded, leecherUploaded: leecherUploaded)
    }

    // MARK: - Steps

    private func validate() throws(RealDistributionError) {
        func invalid(_ message: String) -> RealDistributionError {
            RealDistributionError(code: .invalidConfiguration, message: message)
        }
        guard Self.leecherRange.contains(leechers) else {
            throw invalid("the number of leechers must be in \(Self.leecherRange), not \(leechers)")
        }
        guard fileSize > 0 else { throw invalid("the file size must be positive, not \(fileSize)") }
        guard pieceLength > 0, pieceLength % 16_384 == 0 else {
            throw invalid("the piece length must be a positive multiple of 16 KiB, not \(pieceLength)")
        }
        guard peerUpload > 0, serverUpload > 0 else {
            throw invalid("the upload caps must be positive (u = \(peerUpload), u_s = \(serverUpload))")
        }
        guard FileManager.default.isExecutableFile(atPath: shoalExecutable) else {
            throw invalid("no shoal executable at \(shoalExecutable)")
        }
    }

    /// Runs `shoal create` for `source`, with the run's piece length.
    private func createTorrent(
        of source: String, at torrent: String, logDirectory: String, timeout: Duration
    ) async throws(RealDistributionError) {
        let create = try launch(
            name: "shoal create", executable: shoalExecutable,
            arguments: ["create", source, "-o", torrent, "--piece-length", "\(pieceLength)", "--no-date", "--force"],
            logDirectory: logDirectory, lifetime: timeout + .seconds(10))
        defer { create.stop() }
        guard await create.waitForExit(timeout: timeout) else {
            throw RealDistributionError(
                code: .createFailed, process: create.name, message: "did not finish within \(timeout)",
                stderrTail: create.standardErrorTail())
        }
        guard create.exitStatus == 0 else {
            throw RealDistributionError(
                code: .createFailed, process: create.name, message: create.ending ?? "failed",
                stderrTail: create.standardErrorTail())
        }
    }

    /// Starts one process of the run, its output in `logDirectory`.
    private func launch(
        name: String, executable: String, arguments: [String], logDirectory: String, lifetime: Duration
    ) throws(RealDistributionError) -> BackgroundProcess {
        do {
            return try BackgroundProcess(
                name: name, executable: executable, arguments: arguments,
                logDirectory: URL(fileURLWithPath: logDirectory), lifetime: lifetime)
        } catch {
            throw RealDistributionError(code: .launchFailed, process: name, message: "\(error)")
        }
    }

    /// Waits until `seed` prints that it listens (after checking its data).
    private func waitUntilListening(_ seed: BackgroundProcess, timeout: Duration) async throws(RealDistributionError) {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !ShoalOutput.isListening(seed.standardOutput) {
            guard seed.isRunning else {
                throw RealDistributionError(
                    code: .exitedEarly, process: seed.name,
                    message: "ended before listening (\(seed.ending ?? "ended"))", stderrTail: seed.standardErrorTail())
            }
            guard ContinuousClock.now < deadline, !Task.isCancelled else {
                throw RealDistributionError(
                    code: .timedOut, process: seed.name, message: "did not listen within \(timeout)",
                    stderrTail: seed.standardErrorTail())
            }
            try? await Task.sleep(for: Self.pollInterval)
        }
    }

    /// The arguments of leecher `index` (from 0): `shoal get` into its own directory, on its own port.
    private func leecherArguments(_ index: Int, torrent: String, ports: [Int]) -> [String] {
        var arguments = ["get", torrent, "-o", downloadDirectory(index), "--port", "\(ports[index + 1])"]
        arguments += ["--peer", "127.0.0.1:\(ports[0])"]
        // Client-server: every leecher talks to the server alone, so no peer exchange (it would introduce them).
        if mode == .clientServer { arguments.append("--no-pex") }
        if mode == .peerToPeer {
            for other in 0..<leechers where other != index {
                arguments += ["--peer", "127.0.0.1:\(ports[other + 1])"]
            }
            arguments += ["--seed", "--max-upload", "\(peerUpload)"]
        }
        return arguments
    }

    private func downloadDirectory(_ index: Int) -> String {
        workDirectory + "/leecher-\(index + 1)"
    }

    /// Seconds from `start` until each leecher printed its completion line, read every `pollInterval`
    /// (so each time is late by at most that much). Throws when a leecher or the seed ends first, or
    /// when `deadline` passes.
    private func waitForCompletion(
        of leechers: [BackgroundProcess], seed: BackgroundProcess, since start: ContinuousClock.Instant, clock: ContinuousClock
    ) async throws(RealDistributionError) -> [Double] {
        var times: [Double?] = Array(repeating: nil, count: leechers.count)
        let end = start.advanced(by: deadline)
        while true {
            let now = clock.now
            for (index, leecher) in leechers.enumerated() where times[index] == nil {
                if ShoalOutput.isComplete(leecher.standardOutput) {
                    times[index] = Self.seconds(now - start)
                } else if !leecher.isRunning {
                    throw RealDistributionError(
                        code: .exitedEarly, process: leecher.name,
                        message: "ended before completing (\(leecher.ending ?? "ended"))",
                        stderrTail: leecher.standardErrorTail())
                }
            }
            let done = times.compactMap { $0 }
            if done.count == leechers.count { return done }
            guard seed.isRunning else {
                throw RealDistributionError(
                    code: .exitedEarly, process: seed.name,
                    message: "ended before every leecher completed (\(seed.ending ?? "ended"))",
                    stderrTail: seed.standardErrorTail())
            }
            guard clock.now < end, !Task.isCancelled else {
                let late = leechers.indices.filter { times[$0] == nil }
                let progress = late.map { index in
                    "leecher \(index + 1): "
                        + (leechers[index].standardOutput.split(separator: "\n").last.map(String.init) ?? "(no output)")
                }
                throw RealDistributionError(
                    code: .timedOut,
                    message: "\(late.count) of \(leechers.count) leechers did not complete within \(deadline)"
                        + (Task.isCancelled ? " (cancelled)" : "") + "; their last lines:\n  "
                        + progress.joined(separator: "\n  "))
            }
            try? await Task.sleep(for: Self.pollInterval)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
