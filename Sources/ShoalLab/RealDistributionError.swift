/// Why a real-process distribution run (`RealDistributionRun`) failed: what went wrong, which process
/// it concerns, and the last lines that process wrote on standard error.
public struct RealDistributionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Hashable {
        /// An argument is out of range (N outside 1...16, a rate or size not positive, a piece length
        /// that is not a multiple of 16 KiB) or the `shoal` executable is missing.
        case invalidConfiguration
        /// The work directory, the random file or a download directory could not be made or read.
        case fileSystem
        /// A process could not be started (`timeout` or `shoal` not runnable, no free port).
        case launchFailed
        /// `shoal create` failed.
        case createFailed
        /// A process exited before it was done (the seed before the last leecher completed, a leecher
        /// before it completed).
        case exitedEarly
        /// The deadline passed before every leecher completed.
        case timedOut
        /// A leecher's download differs from the source.
        case dataMismatch
    }

    public var code: Code
    /// The process concerned ("seed", "leecher 3", "shoal create"), if any.
    public var process: String?
    /// What happened, for people.
    public var message: String
    /// The last lines the process wrote on standard error (empty when it wrote none or none applies).
    public var stderrTail: [String]

    public init(code: Code, process: String? = nil, message: String, stderrTail: [String] = []) {
        self.code = code
        self.process = process
        self.message = message
        self.stderrTail = stderrTail
    }

    public var description: String {
        var text = (process.map { "\($0): " } ?? "") + message
        if !stderrTail.isEmpty {
            text += "\n  stderr (last lines):\n" + stderrTail.map { "    " + $0 }.joined(separator: "\n")
        }
        return text
    }
}
