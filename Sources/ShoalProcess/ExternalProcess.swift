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
    /// Runs `executable` (a path, or a name looked up in `PATH`) with `arguments` and waits for it.
    ///
    /// - Parameters:
    ///   - directory: the child's working directory (default: ours).
    ///   - environment: the child's whole environment (default: ours).
    ///   - timeout: after this long the child is killed and `timedOut` is set.
    public static func run(
        _ executable: String, _ arguments: [String], in directory: URL? = nil,
        environment: [String: String]? = nil, timeout: Duration = .seconds(60)
    ) async throws -> ProcessOutcome {
        guard let path = locate(executable) else {
            throw ProcessError("\(executable): not found in PATH")
        }
        let fileManager = FileManager.default
        let scratch = fileManager.temporaryDirectory.appendingPathComponent("shoal-process-\(UUID().uuidString)")
        try fileManager.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fileManager.removeItem(at: scratch) }
        let stdoutURL = scratch.appendingPathComponent("stdout")
        let stderrURL = scratch.appendingPathComponent("stderr")
        guard fileManager.createFile(atPath: stdoutURL.path, contents: nil),
            fileManager.createFile(atPath: stderrURL.path, contents: nil)
        else { throw ProcessError("cannot create output files in \(scratch.path)") }
        let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
        let stderrHandle = try FileHandle(forWritingTo: stderrURL)
        defer {
            try? stdoutHandle.close()
            try? stderrHandle.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        try process.run()

        let pid = process.processIdentifier
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var timedOut = false
        var pause = Duration.milliseconds(1)
        while process.isRunning {
            if clock.now >= deadline || Task.isCancelled {
                kill(pid, SIGKILL)
                timedOut = true
                break
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(20))
        }
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
        let stdout = (try? Data(contentsOf: stdoutURL)) ?? Data()
        let stderr = (try? Data(contentsOf: stderrURL)) ?? Data()
        return ProcessOutcome(
            command: [executable] + arguments, exitCode: exitCode, signal: signal, timedOut: timedOut,
            stdout: [UInt8](stdout), stderr: String(decoding: stderr, as: UTF8.self))
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
