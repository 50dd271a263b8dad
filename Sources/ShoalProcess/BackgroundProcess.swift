#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A long-running program (a BitTorrent client, a shoal peer of a lab run) started, watched and stopped by
/// its PID.
///
/// The program runs under coreutils `timeout --kill-after=5 LIFETIME`, a safety net should this test
/// process die without stopping it: `timeout` puts itself and the program in a process group of their
/// own, whose id is the PID we started, and ends the program after `lifetime` in any case.
/// Output goes to files (never pipes, which a chatty child could fill), kept for failure messages.
///
/// `stop()` sends SIGTERM to that process group, waits up to `grace`, then sends SIGKILL, and reaps
/// the child. It is idempotent, and `deinit` calls it, so a failing test never leaks a process;
/// still, call it (or `defer { process.stop() }`) where the test knows the program is no longer needed.
public final class BackgroundProcess: Sendable, CustomStringConvertible {
    /// A short name for messages ("aria2 seed").
    public let name: String
    /// The program and its arguments, without the `timeout` wrapper.
    public let command: [String]
    /// The PID we started (`timeout`'s), which is also the id of the program's process group.
    public let pid: Int32
    public let stdoutURL: URL
    public let stderrURL: URL
    /// How long `stop()` waits after SIGTERM before it sends SIGKILL.
    public let grace: Duration

    private let process: Process
    private let handles: [FileHandle]
    private let state = Mutex(State())

    private struct State {
        var stopped = false
    }

    /// Starts `executable` with `arguments`.
    ///
    /// - Parameters:
    ///   - logDirectory: where `NAME.stdout` and `NAME.stderr` go (a name with spaces made safe).
    ///   - environment: the whole environment of the program (default: ours).
    ///   - lifetime: after this long `timeout` ends the program whatever happens.
    public init(
        name: String, executable: String, arguments: [String], logDirectory: URL,
        environment: [String: String]? = nil, directory: URL? = nil,
        lifetime: Duration = .seconds(300), grace: Duration = .seconds(3)
    ) throws {
        guard let path = ExternalProcess.locate(executable) else {
            throw ProcessError("\(name): \(executable) not found in PATH")
        }
        guard let timeoutPath = ExternalProcess.locate("timeout") else {
            throw ProcessError("\(name): coreutils `timeout` not found in PATH")
        }
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        let stem = name.map { $0.isLetter || $0.isNumber ? $0 : "-" }
        let stdoutURL = logDirectory.appendingPathComponent(String(stem) + ".stdout")
        let stderrURL = logDirectory.appendingPathComponent(String(stem) + ".stderr")
        guard fileManager.createFile(atPath: stdoutURL.path, contents: nil),
            fileManager.createFile(atPath: stderrURL.path, contents: nil)
        else { throw ProcessError("\(name): cannot create log files in \(logDirectory.path)") }
        let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
        let stderrHandle = try FileHandle(forWritingTo: stderrURL)

        let seconds = max(1, Int((lifetime.components.seconds)))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: timeoutPath)
        process.arguments = ["--kill-after=5", "\(seconds)", path] + arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        if let failure = Self.runWithoutBlockedSignals(process) {
            try? stdoutHandle.close()
            try? stderrHandle.close()
            throw ProcessError("\(name): cannot start \(path): \(failure)")
        }

        self.name = name
        self.command = [executable] + arguments
        self.pid = process.processIdentifier
        self.stdoutURL = stdoutURL
        self.stderrURL = stderrURL
        self.grace = grace
        self.process = process
        self.handles = [stdoutHandle, stderrHandle]
    }

    deinit {
        stop()
    }

    /// Starts `process` from a thread of its own with no signal blocked, and returns why it could
    /// not start, if it could not.
    ///
    /// A child inherits the signal mask of the thread that spawns it, and Foundation's `Process`
    /// does not reset it. Swift concurrency and Dispatch threads block nearly every signal, so a
    /// client started from a test would ignore SIGTERM (and `timeout`, which waits with the mask it
    /// inherited, would never pass it on): `stop()` would always end in SIGKILL after the grace period.
    private static func runWithoutBlockedSignals(_ process: Process) -> String? {
        let failure = Mutex<String?>(nil)
        let started = DispatchSemaphore(value: 0)
        let thread = Thread {
            var none = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, nil)
            do {
                try process.run()
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            started.signal()
        }
        thread.start()
        started.wait()
        return failure.withLock { $0 }
    }

    /// The live (not zombie) processes in the process group `group`, from /proc (Linux).
    public static func liveMembers(ofGroup group: Int32) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var members: [Int32] = []
        for name in names {
            guard let pid = Int32(name),
                let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "PID (COMM) ": state, ppid, pgrp, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, fields[0] != "Z", fields[0] != "X", Int32(fields[2]) == group {
                members.append(pid)
            }
        }
        return members
    }

    /// Whether the program (its `timeout` wrapper) is still running.
    public var isRunning: Bool { process.isRunning }

    /// How it ended, once it has: "exit status N" or "signal N"; nil while it runs.
    public var ending: String? {
        guard !process.isRunning else { return nil }
        switch process.terminationReason {
        case .exit:
            // `timeout` reports a program killed by signal N as 128 + N, and its own timeout as 124.
            let status = process.terminationStatus
            if status == 124 { return "ended by its `timeout` safety net" }
            return status > 128 ? "exit status \(status) (signal \(status - 128))" : "exit status \(status)"
        case .uncaughtSignal:
            return "signal \(process.terminationStatus)"
        @unknown default:
            return "ended"
        }
    }

    /// The exit status once it has exited by itself, else nil.
    public var exitStatus: Int32? {
        guard !process.isRunning, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }

    /// Everything it printed on standard output so far.
    public var standardOutput: String {
        String(decoding: (try? Data(contentsOf: stdoutURL)) ?? Data(), as: UTF8.self)
    }

    /// Everything it printed on standard error so far.
    public var standardError: String {
        String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
    }

    /// One paragraph for a failure message: the command, whether it runs, the last lines it printed.
    public var description: String {
        "\(name) (pid \(pid), \(ending ?? "running")): `\(command.joined(separator: " "))`\n"
            + "  stderr (end): \(Self.tail(standardError))\n  stdout (end): \(Self.tail(standardOutput))"
    }

    /// The last `count` non-empty lines it printed on standard error.
    public func standardErrorTail(_ count: Int = 10) -> [String] {
        standardError.split(separator: "\n").suffix(count).map(String.init)
    }

    public static func tail(_ text: String, lines: Int = 25) -> String {
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = all.suffix(lines).joined(separator: "\n    ")
        return (all.count > lines ? "...\n    " : "") + kept
    }

    /// Waits until the program exits by itself, at most `timeout`; true when it did.
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning {
            if ContinuousClock.now >= deadline || Task.isCancelled { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// SIGTERM to the program's process group, SIGKILL after `grace`, then reaps it. Idempotent.
    public func stop() {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        if process.isRunning {
            signalGroup(SIGTERM)
            let deadline = ContinuousClock.now.advanced(by: grace)
            while process.isRunning && ContinuousClock.now < deadline {
                usleep(20_000)
            }
            // While `timeout` lives, its PID still names the group: nothing else can hold that id.
            if process.isRunning { signalGroup(SIGKILL) }
        }
        process.waitUntilExit()
        for handle in handles { try? handle.close() }
    }

    /// Signals the process group (`timeout` made one with our PID as its id) and the PID itself
    /// (in case `timeout` has not made its group yet).
    private func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
        kill(pid, signal)
    }
}
