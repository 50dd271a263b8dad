#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// One process of a real run (the seed, a leecher), started with Foundation's `Process` and stopped by
/// its PID.
///
/// It runs under coreutils `timeout --kill-after=5 LIFETIME`, a safety net should the process that
/// started it die first: `timeout` puts itself and the program in a process group of their own, whose
/// id is the PID started here, and ends the program after `lifetime` whatever happens. Output goes to
/// files (a pipe nobody reads could fill and block the program).
///
/// `stop()` sends SIGTERM to that group, waits up to `grace`, sends SIGKILL, and reaps the child. It is
/// idempotent, and `deinit` calls it, so a failing run never leaks a process.
final class LabProcess: Sendable {
    /// A short name for messages ("seed", "leecher 3").
    let name: String
    /// The program and its arguments, without the `timeout` wrapper.
    let command: [String]
    /// The PID started (`timeout`'s), also the id of the program's process group.
    let pid: Int32
    let stdoutPath: String
    let stderrPath: String
    /// How long `stop()` waits after SIGTERM before it sends SIGKILL.
    let grace: Duration

    private let process: Process
    private let handles: [FileHandle]
    private let stopped = Mutex(false)

    /// Starts `executable` (a path) with `arguments`, its output in `logDirectory`/NAME.stdout and
    /// NAME.stderr (a name with spaces made safe).
    init(
        name: String, executable: String, arguments: [String], logDirectory: String, lifetime: Duration,
        grace: Duration = .seconds(3)
    ) throws(RealDistributionError) {
        guard let timeoutPath = Self.locate("timeout") else {
            throw RealDistributionError(
                code: .launchFailed, process: name, message: "coreutils `timeout` is not in PATH")
        }
        let stem = String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        let stdoutPath = logDirectory + "/" + stem + ".stdout"
        let stderrPath = logDirectory + "/" + stem + ".stderr"
        let fileManager = FileManager.default
        let stdoutHandle: FileHandle
        let stderrHandle: FileHandle
        do {
            try fileManager.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
            guard fileManager.createFile(atPath: stdoutPath, contents: nil),
                fileManager.createFile(atPath: stderrPath, contents: nil)
            else { throw CocoaError(.fileWriteUnknown) }
            stdoutHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
            stderrHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        } catch {
            throw RealDistributionError(
                code: .fileSystem, process: name, message: "cannot create log files in \(logDirectory): \(error)")
        }

        let seconds = max(1, lifetime.components.seconds + (lifetime.components.attoseconds > 0 ? 1 : 0))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: timeoutPath)
        process.arguments = ["--kill-after=5", "\(seconds)", executable] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        if let failure = Self.runWithoutBlockedSignals(process) {
            try? stdoutHandle.close()
            try? stderrHandle.close()
            throw RealDistributionError(
                code: .launchFailed, process: name, message: "cannot start \(executable): \(failure)")
        }

        self.name = name
        self.command = [executable] + arguments
        self.pid = process.processIdentifier
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.grace = grace
        self.process = process
        self.handles = [stdoutHandle, stderrHandle]
    }

    deinit {
        stop()
    }

    /// Whether the program (its `timeout` wrapper) still runs.
    var isRunning: Bool { process.isRunning }

    /// How it ended, once it has ("exit status 1", "signal 9"); nil while it runs.
    var ending: String? {
        guard !process.isRunning else { return nil }
        switch process.terminationReason {
        case .exit:
            // `timeout` reports a program killed by signal N as 128 + N, and its own deadline as 124.
            let status = process.terminationStatus
            if status == 124 { return "ended by its `timeout` deadline" }
            return status > 128 ? "exit status \(status) (signal \(status - 128))" : "exit status \(status)"
        case .uncaughtSignal:
            return "signal \(process.terminationStatus)"
        @unknown default:
            return "ended"
        }
    }

    /// The exit status once it has exited by itself (through `timeout`), else nil.
    var exitStatus: Int32? {
        guard !process.isRunning, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }

    /// Everything it printed on standard output so far.
    var standardOutput: String { Self.read(stdoutPath) }

    /// The last `count` non-empty lines it printed on standard error.
    func stderrTail(_ count: Int = 10) -> [String] {
        Self.read(stderrPath).split(separator: "\n").suffix(count).map(String.init)
    }

    /// Waits until the program exits by itself, at most `timeout`, looking every 20 ms; true when it did.
    func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning {
            if ContinuousClock.now >= deadline || Task.isCancelled { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// SIGTERM to the program's process group, SIGKILL after `grace`, then reaps it. Idempotent.
    func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        if process.isRunning {
            signalGroup(SIGTERM)
            let deadline = ContinuousClock.now.advanced(by: grace)
            while process.isRunning && ContinuousClock.now < deadline {
                usleep(20_000)
            }
            // While `timeout` lives its PID names the group: nothing else can hold that id.
            if process.isRunning { signalGroup(SIGKILL) }
        }
        process.waitUntilExit()
        for handle in handles { try? handle.close() }
    }

    /// Signals the process group (`timeout` made one with our PID as its id) and the PID itself (in
    /// case `timeout` has not made its group yet).
    private func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
        kill(pid, signal)
    }

    /// Starts `process` from a thread of its own with no signal blocked; returns why it could not start.
    ///
    /// A child inherits the signal mask of the thread that spawns it, and Foundation's `Process` does
    /// not reset it. Swift concurrency and Dispatch threads block nearly every signal, so a child
    /// started from one would ignore SIGTERM (and `timeout` would never pass it on).
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

    /// The first executable `name` in `PATH`.
    static func locate(_ name: String) -> String? {
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
}
