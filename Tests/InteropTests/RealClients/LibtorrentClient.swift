import Foundation
import ShoalProcess
import Synchronization

/// libtorrent 2.0 (python3-libtorrent) as a peer: `Scripts/lt_peer.py` run by Debian's Python.
///
/// The script prints one JSON line of status about every 0.5 s; this class reads the last one. It
/// dials the peers it is given with `connect_peer`, again every second while it has no peer. A
/// leecher flushes libtorrent's cache once it has every piece, prints a `complete` line and exits 0.
final class LibtorrentClient: RealClient {
    /// libtorrent's settings over the loopback ones of PEERS.md.
    enum Preset: String, Sendable {
        /// libtorrent's defaults.
        case loopback
        /// `lt.high_performance_seed()`.
        case highPerformance = "high-performance"
    }

    let kind = RealClientKind.libtorrent
    let workDirectory: URL
    let lifetime: Duration
    let preset: Preset
    /// The most payload bytes per second it uploads, to all peers together (loopback ones included); nil: no limit.
    let uploadLimit: Int?
    /// Its status lines list its peers (``peers()``).
    let reportsPeers: Bool
    /// Without the ut_pex plugin: it neither tells nor learns peers by PEX.
    let noPEX: Bool
    private let run = Mutex(ClientRun())

    /// The script, found from this file's path.
    static var script: URL {
        Interop.packageRoot.appendingPathComponent("Tests/InteropTests/Scripts/lt_peer.py")
    }

    init(
        workDirectory: URL, lifetime: Duration = .seconds(300), preset: Preset = .loopback, uploadLimit: Int? = nil,
        reportsPeers: Bool = false, noPEX: Bool = false
    ) {
        self.workDirectory = workDirectory
        self.lifetime = lifetime
        self.preset = preset
        self.uploadLimit = uploadLimit
        self.reportsPeers = reportsPeers
        self.noPEX = noPEX
    }

    deinit { stop() }

    var process: BackgroundProcess? { run.withLock { $0.process } }
    var peerAddress: PeerAddress? { run.withLock { $0.peerAddress } }
    var description: String { run.withLock { $0.describe(kind) } }

    func startSeeding(
        torrent: URL, dataDirectory: URL, port: Int, connectTo peers: [PeerAddress], timeout: Duration
    ) async throws {
        let process = try start(.seed, source: ["--torrent", torrent.path], directory: dataDirectory, port: port, peers: peers)
        try await poll("the libtorrent seed to check its data", timeout: timeout, context: { self.description }) {
            let wasRunning = process.isRunning
            let status = try self.status()
            if let error = status.error { throw RealClientError("libtorrent cannot seed: \(error)\n\(self)") }
            if status.isComplete { return status }
            if !wasRunning { throw RealClientError("libtorrent stopped before seeding\n\(self)") }
            return nil
        }
    }

    func startLeeching(
        torrent: URL, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]
    ) async throws {
        try await startLeeching(
            source: ["--torrent", torrent.path], downloadDirectory: downloadDirectory, port: port, peers: peers)
    }

    /// Downloads from a magnet link: the metadata comes from the peers (BEP 9).
    func startLeeching(magnet: String, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]) async throws {
        try await startLeeching(source: ["--magnet", magnet], downloadDirectory: downloadDirectory, port: port, peers: peers)
    }

    /// Whether it has the info dictionary (a magnet leecher once it fetched it).
    var hasMetadata: Bool { lines().contains { $0.event == "metadata" || $0.hasMetadata == true } }

    /// The peers of its last status line (with `reportsPeers`).
    func peers() -> [ReportedPeer] {
        lines().last(where: { $0.peers != nil })?.peers ?? []
    }

    /// A peer as the script reports it.
    struct ReportedPeer: Decodable, Sendable, CustomStringConvertible {
        var ip: String
        var port: Int
        /// libtorrent's `peer_info.source` flags: 1 tracker, 2 DHT, 4 PEX, 8 LSD, 32 incoming.
        var source: Int
        var outgoing: Bool

        var learntByPEX: Bool { source & 4 != 0 }
        var description: String { "\(ip):\(port) (source \(source)\(outgoing ? ", outgoing" : ""))" }
    }

    private func startLeeching(source: [String], downloadDirectory: URL, port: Int, peers: [PeerAddress]) async throws {
        let process = try start(.leech, source: source, directory: downloadDirectory, port: port, peers: peers)
        try await poll("the libtorrent leecher to listen", timeout: .seconds(15), context: { self.description }) {
            let wasRunning = process.isRunning
            let lines = self.lines()
            if let error = lines.last(where: { $0.event == "error" }) {
                throw RealClientError("libtorrent failed: \(error.message ?? "?")\n\(self)")
            }
            if lines.contains(where: { $0.event == "listening" }) { return true }
            if !wasRunning { throw RealClientError("libtorrent stopped before listening\n\(self)") }
            return nil
        }
    }

    private func start(
        _ role: ClientRun.Role, source: [String], directory: URL, port: Int, peers: [PeerAddress]
    ) throws -> BackgroundProcess {
        try kind.require()
        try run.withLock { try $0.checkNotStarted(kind) }
        var arguments = [Self.script.path] + source + [
            "--save-path", directory.path,
            role == .seed ? "--seed" : "--leech", "--port", "\(port)", "--preset", preset.rawValue,
            "--max-seconds", "\(lifetime.components.seconds)",
        ]
        for peer in peers { arguments += ["--connect", peer.description] }
        if let uploadLimit { arguments += ["--upload-limit", "\(uploadLimit)"] }
        if reportsPeers { arguments.append("--report-peers") }
        if noPEX { arguments.append("--no-pex") }
        let process = try BackgroundProcess(
            name: "libtorrent \(role.rawValue)", executable: Interop.systemPython, arguments: arguments,
            logDirectory: workDirectory, environment: cleanChildEnvironment(),
            lifetime: lifetime + .seconds(10))
        run.withLock {
            $0.process = process
            $0.role = role
            $0.port = port
        }
        return process
    }

    func status() throws -> TransferStatus {
        let (role, process) = run.withLock { ($0.role, $0.process) }
        guard let process, let role else { throw RealClientError("libtorrent was not started") }
        let lines = lines()
        if let error = lines.last(where: { $0.event == "error" }) {
            var status = error.status(role: role)
            status.error = error.message ?? "unknown error"
            return status
        }
        guard let last = lines.last(where: { $0.event != "listening" }) else {
            return TransferStatus(
                state: process.isRunning ? "starting" : "exited", progress: 0, bytesDone: 0, totalBytes: 0,
                peers: 0, downloadRate: 0, uploadRate: 0, uploaded: 0, downloaded: 0, isComplete: false)
        }
        return last.status(role: role)
    }

    /// The JSON lines the script printed so far (an incomplete last line is left out).
    private func lines() -> [Line] {
        guard let process = run.withLock({ $0.process }) else { return [] }
        let text = process.standardOutput
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var lines: [Line] = []
        for line in text.split(separator: "\n") where line.hasPrefix("{") && line.hasSuffix("}") {
            if let decoded = try? decoder.decode(Line.self, from: Data(line.utf8)) { lines.append(decoded) }
        }
        return lines
    }

    func stop() {
        run.withLock { $0.process }?.stop()
    }

    /// One line of the script's output.
    private struct Line: Decodable {
        var event: String
        var message: String?
        var state: String?
        var progress: Double?
        var numPeers: Int?
        var downloadRate: Int64?
        var uploadRate: Int64?
        var totalDownload: Int64?
        var totalUpload: Int64?
        var totalWantedDone: Int64?
        var totalWanted: Int64?
        var isSeeding: Bool?
        var hasMetadata: Bool?
        var peers: [ReportedPeer]?
        var error: String?

        func status(role: ClientRun.Role) -> TransferStatus {
            let complete = event == "complete" || (role == .seed && isSeeding == true)
            return TransferStatus(
                state: state ?? event, progress: progress ?? 0, bytesDone: totalWantedDone ?? 0,
                totalBytes: totalWanted ?? 0, peers: numPeers ?? 0, downloadRate: downloadRate ?? 0,
                uploadRate: uploadRate ?? 0, uploaded: totalUpload ?? 0, downloaded: totalDownload ?? 0,
                isComplete: complete, error: (error ?? "").isEmpty ? nil : error)
        }
    }
}
