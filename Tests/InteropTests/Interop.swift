import Foundation
import ShoalProcess
import Testing

/// An external program the interoperability tests compare Shoal with.
enum InteropTool: String, Sendable, CaseIterable, CustomStringConvertible {
    case mktorrent
    case transmissionCreate = "transmission-create"
    /// libtorrent's Python bindings, run by Debian's `/usr/bin/python3` (the `python3` on PATH may be pyenv's).
    case libtorrent = "python3-libtorrent"

    /// The Debian package that brings the tool.
    var package: String {
        switch self {
        case .mktorrent: "mktorrent"
        case .transmissionCreate: "transmission-cli"
        case .libtorrent: "python3-libtorrent"
        }
    }

    var description: String { rawValue }

    /// The program to run: the tool itself, or the Python that can import libtorrent.
    var executable: String {
        switch self {
        case .mktorrent: "mktorrent"
        case .transmissionCreate: "transmission-create"
        case .libtorrent: Interop.systemPython
        }
    }

    /// Whether the tool is on this machine.
    var isInstalled: Bool {
        switch self {
        case .mktorrent, .transmissionCreate:
            return ExternalProcess.locate(executable) != nil
        case .libtorrent:
            guard FileManager.default.isExecutableFile(atPath: Interop.systemPython) else { return false }
            for directory in Interop.systemPythonPackageDirectories {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                if names.contains(where: { $0.hasPrefix("libtorrent") }) { return true }
            }
            return false
        }
    }
}

/// Gating, the `shoal` binary, temporary directories and `shoal info --json` for the interop tests.
enum Interop {
    static let systemPython = "/usr/bin/python3"
    static let systemPythonPackageDirectories = [
        "/usr/lib/python3/dist-packages", "/usr/local/lib/python3/dist-packages",
    ]

    /// An announce URL that nothing answers (trackers live outside the info dictionary, so they
    /// never change an info-hash; some tools insist on one).
    static let deadTracker = "http://127.0.0.1:1/announce"

    /// True in CI or with `SHOAL_INTEROP=1`: then a missing tool fails its tests instead of skipping them.
    static var isRequired: Bool {
        let environment = ProcessInfo.processInfo.environment
        if let ci = environment["CI"], !ci.isEmpty { return true }
        return environment["SHOAL_INTEROP"] == "1"
    }

    /// For `.enabled(if:)`: run when the tool is here, and also when it is required (then fail loudly).
    static func shouldRun(tool: InteropTool) -> Bool {
        tool.isInstalled || isRequired
    }

    /// The tool's executable, or a failure that says how to get it.
    static func require(_ tool: InteropTool) throws -> String {
        guard tool.isInstalled else {
            throw ProcessError("\(tool) is missing: install \(tool.package) (scripts/test does)")
        }
        return tool.executable
    }

    // MARK: The shoal binary

    /// The package root, found from this file's path (Tests/InteropTests/Interop.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `shoal` executable built next to the test bundle, else `.build/debug/shoal`.
    static func shoalBinary() throws -> String {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["SHOAL_BINARY"] { candidates.append(override) }
        // Linux: .build/<triple>/debug/ShoalPackageTests.xctest is an executable beside `shoal`.
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").standardizedFileURL
        candidates.append(runner.deletingLastPathComponent().appendingPathComponent("shoal").path)
        // macOS: the bundle is a directory; its binary sits in .xctest/Contents/MacOS.
        let bundle = Bundle.main.bundleURL.standardizedFileURL
        candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("shoal").path)
        candidates.append(packageRoot.appendingPathComponent(".build/debug/shoal").path)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
        }
        throw ProcessError("no shoal binary (looked at \(candidates.joined(separator: ", "))): "
                + "run `swift build --build-tests`")
    }

    /// Runs `shoal ARGUMENTS`.
    static func shoal(_ arguments: [String], in directory: URL? = nil) async throws -> ProcessOutcome {
        try await ExternalProcess.run(try shoalBinary(), arguments, in: directory, timeout: .seconds(60))
    }

    /// `shoal create PATH -o OUTPUT --no-date EXTRA`; fails the test unless it succeeds quietly.
    static func shoalCreate(_ path: URL, output: URL, _ extra: [String] = []) async throws {
        let outcome = try await shoal(["create", path.path, "-o", output.path, "--no-date"] + extra)
        guard outcome.succeeded, outcome.stderr.isEmpty else {
            throw ProcessError("shoal create failed: \(outcome.summary)")
        }
    }

    /// `shoal info SOURCE --json`, decoded; fails the test unless it succeeds quietly.
    static func shoalInfo(_ source: String) async throws -> ShoalInfo {
        let outcome = try await shoal(["info", source, "--json"])
        guard outcome.succeeded, outcome.stderr.isEmpty else {
            throw ProcessError("shoal info failed: \(outcome.summary)")
        }
        do {
            return try JSONDecoder().decode(ShoalInfo.self, from: Data(outcome.stdout))
        } catch {
            throw ProcessError("shoal info printed JSON we cannot read (\(error)): \(outcome.summary)")
        }
    }

    // MARK: Temporary directories

    /// Runs `body` with a fresh directory that is removed afterwards, whatever happens
    /// (kept when `SHOAL_INTEROP_KEEP=1`, to look at the files of a failure).
    static func withTemporaryDirectory<Result>(
        _ body: (URL) async throws -> Result
    ) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-interop-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keep = ProcessInfo.processInfo.environment["SHOAL_INTEROP_KEEP"] == "1"
        defer { if !keep { try? FileManager.default.removeItem(at: directory) } }
        return try await body(directory)
    }
}

/// The JSON that `shoal info --json` prints (the fields the tests read).
struct ShoalInfo: Decodable, Sendable {
    struct File: Decodable, Sendable, Equatable, CustomStringConvertible {
        var path: String
        var length: Int64
        var offset: Int64
        var padding: Bool
        var attributes: String?
        var symlinkTarget: String?
        var piecesRoot: String?

        var description: String { "\(path) (\(length) B at \(offset)\(padding ? ", padding" : ""))" }
    }

    var kind: String
    var name: String?
    var infoHashV1: String?
    var infoHashV2: String?
    var metaVersion: Int?
    var pieceLength: Int?
    var pieceCount: Int?
    var totalSize: Int64?
    var `private`: Bool?
    var source: String?
    var comment: String?
    var files: [File]?
    var v2Files: [File]?
    var trackers: [[String]]
    var webSeeds: [String]
    var magnet: String
    var warnings: [String]?
}
