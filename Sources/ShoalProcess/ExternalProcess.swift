#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Runs programs with Foundation's `Process`, bounded by a timeout (the child is killed by its PID
/// with SIGKILL when it runs over). Output goes to files, not pipes, so a chatty child can never
/// block on a full pipe while we wait for it.
public enum ExternalProcess {
    /// Runs `executable` (a path, or a name looked up in `PATH`) with `arguments` and waits for it,
    /// sleeping as a task between looks.
    ///
    /// - Parameters:
    ///   - directory: the child's working directory (default: ours).
    ///   - environment: the child's whole environment (default: ours).
    ///   - timeout: after this long the child is killed and `timedOut` is set.
    public static func run(
        _ executable: String, _ arguments: [String], in directory: URL? = nil,
        environment: [String: String]? = nil, timeout: Duration = .seconds(60)
    ) async throws -> ProcessOutcome {
        let child = try Child(executable, arguments, in: directory, environment: environment, timeout: timeout)
        var pause = Duration.milliseconds(1)
        while !child.endedOrKilled(cancelled: Task.isCancelled) {
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(20))
        }
        return child.outcome()
    }

    /// ``run(_:_:in:environment:timeout:)`` blocking the calling thread: for callers that must not depend
    /// on the concurrency pool to keep the timeout (a short conversion while other tasks keep it busy).
    public static func runBlocking(
        _ executable: String, _ arguments: [String], in directory: URL? = nil,
        environment: [String: String]? = nil, timeout: Duration = .seconds(60)
    ) throws -> ProcessOutcome {
        let child = try Child(executable, arguments, in: directory, environment: environment, timeout: timeout)
        var pause = 0.001
        while !child.endedOrKilled(cancelled: false) {
            Thread.sleep(forTimeInterval: pause)
            pause = min(pause * 2, 0.02)
        }
        return child.outcome()
    }

    /// A started child, its output files and its deadline; the files go when it is released.
    private final class Child {
        let command: [String]
        let process = Process()
        let scratch: URL
        let handles: [FileHandle]
        let deadline: ContinuousClock.Instant
        var timedOut = false

        init(
            _ executable: String, _ arguments: [String], in directory: URL?, environment: [String: String]?,
            timeout: Duration
        ) throws {
            guard let path = ExternalProcess.locate(executable) else {
                throw ProcessError("\(executable): not found in PATH")
            }
            command = [executable] + arguments
            let fileManager = FileManager.default
            scratch = fileManager.temporaryDirectory.appendingPathComponent("shoal-process-\(UUID().uuidString)")
            try fileManager.createDirectory(at: scratch, withIntermediateDirectories: true)
            guard fileManager.createFile(atPath: scratch.appendingPathComponent("stdout").path, contents: nil),
                fileManager.createFile(atPath: scratch.appendingPathComponent("stderr").path, contents: nil)
            else {
                try? fileManager.removeItem(at: scratch)
                throw ProcessError("cannot create output files in \(scratch.path)")
            }
            handles = [
                try FileHandle(forWritingTo: scratch.appendingPathComponent("stdout")),
                try FileHandle(forWritingTo: scratch.appendingPathComponent("stderr")),
            ]
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            if let directory { process.currentDirectoryURL = directory }
            if let environment { process.environment = environment }
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = handles[0]
            process.standardError = handles[1]
            deadline = ContinuousClock.now.advanced(by: timeout)
            try process.run()
        }

        deinit {
            for handle in handles { try? handle.close() }
            try? FileManager.default.removeItem(at: scratch)
        }

        /// Whether the child has ended; past its deadline (or when `cancelled`) it is killed with SIGKILL.
        func endedOrKilled(cancelled: Bool) -> Bool {
            guard process.isRunning else { return true }
            guard cancelled || ContinuousClock.now >= deadline else { return false }
            kill(process.processIdentifier, SIGKILL)
            timedOut = true
            return true
        }

        /// How it ended and what it printed, once it has ended (waits for the kill to take).
        func outcome() -> ProcessOutcome {
            process.waitUntilExit()
            let exitCode: Int32?
            let signal: Int32?
            switch process.terminationReason {
            case .exit:
                exitCode = process.terminationStatus
                signal = nil
            case .uncaughtSignal:
                exitCode = nil
                signal = process.terminationStatus
            @unknown default:
                exitCode = nil
                signal = nil
            }
            let stdout = (try? Data(contentsOf: scratch.appendingPathComponent("stdout"))) ?? Data()
            let stderr = (try? Data(contentsOf: scratch.appendingPathComponent("stderr"))) ?? Data()
            return ProcessOutcome(
                command: command, exitCode: exitCode, signal: signal, timedOut: timedOut, stdout: [UInt8](stdout),
                stderr: String(decoding: stderr, as: UTF8.self))
        }
    }

    /// The executable's path: `name` itself when it holds a `/`, otherwise the first match in `PATH`.
    public static func locate(_ name: String) -> String? {
        let fileManager = FileManager.default
        if name.contains("/") { return fileManager.isExecutableFile(atPath: name) ? name : nil }
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                fileManager.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }
}
