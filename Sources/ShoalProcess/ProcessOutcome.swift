/// How a finished external program ended, and what it printed.
public struct ProcessOutcome: Sendable {
    /// The program and its arguments, for messages.
    public var command: [String]
    /// The exit status, or nil when a signal ended the program.
    public var exitCode: Int32?
    /// The signal that ended the program (a crash, or our kill after the timeout).
    public var signal: Int32?
    /// Whether the program outlived its timeout and was killed.
    public var timedOut: Bool
    public var stdout: [UInt8]
    public var stderr: String

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }

    /// Exited by itself with status 0.
    public var succeeded: Bool { exitCode == 0 && !timedOut }

    /// One paragraph for a failure message: the command, how it ended, its standard error.
    public var summary: String {
        let ending: String
        if timedOut {
            ending = "killed after its timeout"
        } else if let signal {
            ending = "killed by signal \(signal)"
        } else {
            ending = "exit status \(exitCode.map(String.init) ?? "?")"
        }
        let shownOut = stdoutText.count > 2_000 ? String(stdoutText.prefix(2_000)) + "..." : stdoutText
        return "`\(command.joined(separator: " "))`: \(ending)\nstderr: \(stderr)\nstdout: \(shownOut)"
    }
}
