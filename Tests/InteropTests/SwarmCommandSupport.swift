#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalProcess
import Testing

/// Running `shoal get` and `shoal seed` as child processes, and reading what they print, for the
/// tests of resume data, disk errors and swarms (ResumeInteropTests, DiskErrorTests, ThreePartySwarmTests).
enum SwarmCommand {
    /// `shoal seed` of `fixture` in the background, ready once it prints its listening port.
    static func seed(
        _ fixture: RealClientHarness.Fixture, port: Int, maxUpload: String? = nil, in directory: URL,
        lifetime: Duration = .seconds(90)
    ) async throws -> BackgroundProcess {
        let seed = try BackgroundProcess.shoal(
            ["seed", fixture.torrent.path, "--data", fixture.seedData.path, "--port", "\(port)"]
                + (maxUpload.map { ["--max-upload", $0] } ?? []),
            name: "shoal-seed", logDirectory: directory.appendingPathComponent("logs"), lifetime: lifetime)
        try await waitUntilListening(seed)
        return seed
    }

    /// A fixture in DIRECTORY, `shoal seed` serving it (at `maxUpload` when given), and the folder a
    /// download of it goes to (DIRECTORY/download, not created). The caller stops the seed.
    static func seededFixture(
        _ tree: FileTree = RealClientHarness.tree, name: String = "tree", maxUpload: String? = nil, in directory: URL
    ) async throws -> (fixture: RealClientHarness.Fixture, seedPort: Int, seed: BackgroundProcess, download: URL) {
        let fixture = try await RealClientHarness.makeFixture(tree, name: name, in: directory)
        let seedPort = try LoopbackPorts.free()
        let seed = try await Self.seed(fixture, port: seedPort, maxUpload: maxUpload, in: directory)
        return (fixture, seedPort, seed, directory.appendingPathComponent("download", isDirectory: true))
    }

    /// The arguments of `shoal get TORRENT -o DOWNLOAD --port PORT --peer 127.0.0.1:P... EXTRA`.
    static func getArguments(
        _ fixture: RealClientHarness.Fixture, into download: URL, port: Int, peers: [Int], _ extra: [String] = []
    ) -> [String] {
        ["get", fixture.torrent.path, "-o", download.path, "--port", "\(port)"]
            + peers.flatMap { ["--peer", "127.0.0.1:\($0)"] } + extra
    }

    /// `shoal get` in the background (for tests that interrupt it or wait for it while it seeds).
    static func startGet(
        _ fixture: RealClientHarness.Fixture, into download: URL, peers: [Int], _ extra: [String] = [],
        name: String = "shoal-get", in directory: URL, lifetime: Duration = .seconds(90)
    ) throws -> BackgroundProcess {
        try BackgroundProcess.shoal(
            getArguments(fixture, into: download, port: try LoopbackPorts.free(), peers: peers, extra),
            name: name, logDirectory: directory.appendingPathComponent("logs"), lifetime: lifetime)
    }

    /// `shoal get` run to its end (at most `timeout`), with how long it took.
    static func get(
        _ fixture: RealClientHarness.Fixture, into download: URL, peers: [Int], _ extra: [String] = [],
        timeout: Duration = .seconds(40)
    ) async throws -> (outcome: ProcessOutcome, seconds: Double) {
        let clock = ContinuousClock()
        let started = clock.now
        let outcome = try await ExternalProcess.run(
            try Interop.shoalBinary(),
            getArguments(fixture, into: download, port: try LoopbackPorts.free(), peers: peers, extra),
            timeout: timeout)
        return (outcome, seconds(clock.now - started))
    }

    /// Waits until `process` prints "Listening on port"; throws if it exits first.
    static func waitUntilListening(_ process: BackgroundProcess, timeout: Duration = .seconds(30)) async throws {
        try await poll("\(process.name) to listen", timeout: timeout, context: { "\(process)" }) {
            if process.standardOutput.contains("Listening on port") { return true }
            if !process.isRunning { throw RealClientError("\(process.name) ended before listening\n\(process)") }
            return nil
        }
    }

    /// Waits until `process` prints a progress line with more than `percent` % verified (and
    /// returns that share); throws if it completes or exits first.
    @discardableResult
    static func waitForProgress(
        _ process: BackgroundProcess, above percent: Double, timeout: Duration = .seconds(30)
    ) async throws -> Double {
        try await poll(
            "\(process.name) to verify more than \(percent)%", timeout: timeout, interval: .milliseconds(50),
            context: { "\(process)" }
        ) {
            let output = process.standardOutput
            if let done = progressPercents(output).last(where: { $0 > percent }) { return done }
            if output.contains("Complete:") {
                throw RealClientError("\(process.name) completed before it could be stopped part way\n\(process)")
            }
            if !process.isRunning { throw RealClientError("\(process.name) ended early\n\(process)") }
            return nil
        }
    }

    // MARK: What shoal prints

    /// The verified shares of the progress lines ("42.0% of 3.16 MiB, 1 peer, ...").
    static func progressPercents(_ output: String) -> [Double] {
        output.split(separator: "\n").compactMap { line -> Double? in
            guard let range = line.range(of: "% of ") else { return nil }
            return Double(line[..<range.lowerBound])
        }
    }

    /// X and Y of "Listening on port N; X of Y pieces verified": the pieces it starts with.
    static func startingPieces(_ output: String) -> (verified: Int, count: Int)? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Listening on port") }),
            let semicolon = line.firstIndex(of: ";")
        else { return nil }
        let words = line[line.index(after: semicolon)...].split(separator: " ")
        guard words.count >= 3, let verified = Int(words[0]), words[1] == "of", let count = Int(words[2]) else {
            return nil
        }
        return (verified, count)
    }

    /// K of "Resume data: K pieces trusted without reading"; nil when the line is missing.
    static func piecesTrusted(_ output: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Resume data: ") && $0.contains("trusted") })
        else { return nil }
        return line.split(separator: " ").dropFirst(2).first.flatMap { Int($0) }
    }

    /// X and Y of "Stopped: X of Y pieces verified; resume data saved".
    static func stoppedPieces(_ output: String) -> (verified: Int, count: Int)? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Stopped: ") }) else { return nil }
        let words = line.split(separator: " ")
        guard words.count >= 4, let verified = Int(words[1]), words[2] == "of", let count = Int(words[3]) else {
            return nil
        }
        return (verified, count)
    }

    /// The totals of the last "Downloaded A, uploaded B" line, in bytes (to the 2 decimals printed).
    static func transferTotals(_ output: String) -> (downloaded: Int64, uploaded: Int64)? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("Downloaded ") }) else { return nil }
        let parts = line.dropFirst("Downloaded ".count).split(separator: ",", omittingEmptySubsequences: true)
        guard parts.count >= 2, let downloaded = bytes(parts[0]),
            parts[1].trimmingCharacters(in: .whitespaces).hasPrefix("uploaded "),
            let uploaded = bytes(parts[1].trimmingCharacters(in: .whitespaces).dropFirst("uploaded ".count))
        else { return nil }
        return (downloaded, uploaded)
    }

    /// "1.50 MiB", "0 B", "32.00 KiB" in bytes.
    static func bytes<S: StringProtocol>(_ text: S) -> Int64? {
        let words = text.split(separator: " ")
        guard words.count == 2, let value = Double(words[0]) else { return nil }
        let units = ["B": 1.0, "KiB": 1024.0, "MiB": 1_048_576.0, "GiB": 1_073_741_824.0]
        guard let scale = units[String(words[1])] else { return nil }
        return Int64((value * scale).rounded())
    }

    // MARK: Processes and files

    /// The program's own PID: the member of the process group other than `timeout` (see BackgroundProcess).
    static func programPID(of process: BackgroundProcess) -> Int32? {
        BackgroundProcess.liveMembers(ofGroup: process.pid).first { $0 != process.pid }
    }

    /// Sends `signal` to the program itself (not to its `timeout` wrapper, which would pass it on
    /// to the whole group as well, and start its kill-after timer).
    static func send(_ signal: Int32, to process: BackgroundProcess) throws {
        guard let pid = programPID(of: process) else {
            throw RealClientError("cannot find the process of \(process.name) to signal\n\(process)")
        }
        guard kill(pid, signal) == 0 else {
            throw RealClientError("kill(\(pid), \(signal)) failed: errno \(errno)")
        }
    }

    /// Waits for `process` to exit by itself and returns its exit status; throws after `timeout`.
    static func exitStatus(of process: BackgroundProcess, timeout: Duration = .seconds(15)) async throws -> Int32 {
        guard await process.waitForExit(timeout: timeout), let status = process.exitStatus else {
            throw RealClientError("\(process.name) did not exit within \(timeout)\n\(process)")
        }
        return status
    }

    /// The resume files (`.INFOHASH.shoal-resume`) in `download`.
    static func resumeFiles(in download: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: download.path)) ?? [])
            .filter { $0.hasPrefix(".") && $0.hasSuffix(".shoal-resume") }
    }

    /// The torrent's files as `shoal info --json` lists them (their index is the one `--skip` takes).
    static func files(of fixture: RealClientHarness.Fixture) async throws -> [ShoalInfo.File] {
        try await Interop.shoalInfo(fixture.torrent.path).files ?? []
    }

    /// Runs a short system command (mount, umount, chown) synchronously; its status and output.
    @discardableResult
    static func system(_ arguments: [String]) -> (status: Int32, output: String) {
        guard let path = ExternalProcess.locate(arguments[0]) else { return (127, "\(arguments[0]) not found") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return (127, "\(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
