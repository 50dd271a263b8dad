import Foundation
import ShoalProcess

/// A real BitTorrent client that the interoperability tests and benchmarks run on loopback.
enum RealClientKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// libtorrent 2.0 through its Python bindings and `Scripts/lt_peer.py`.
    case libtorrent
    /// aria2c 1.36, driven over its JSON-RPC.
    case aria2
    /// transmission-daemon 3.00, driven over its RPC.
    case transmission
    /// qbittorrent-nox 4.5 (libtorrent 2.0 inside), driven over its Web API v2.
    case qbittorrent

    var description: String { rawValue }

    /// The Debian package that brings the client.
    var package: String {
        switch self {
        case .libtorrent: "python3-libtorrent"
        case .aria2: "aria2"
        case .transmission: "transmission-daemon"
        case .qbittorrent: "qbittorrent-nox"
        }
    }

    /// Whether the client (and `curl`, for the ones driven over HTTP) is on this machine.
    var isInstalled: Bool {
        switch self {
        case .libtorrent:
            return InteropTool.libtorrent.isInstalled
        case .aria2:
            return ExternalProcess.locate("aria2c") != nil && ExternalProcess.locate("curl") != nil
        case .transmission:
            return ExternalProcess.locate("transmission-daemon") != nil && ExternalProcess.locate("curl") != nil
        case .qbittorrent:
            return ExternalProcess.locate("qbittorrent-nox") != nil && ExternalProcess.locate("curl") != nil
        }
    }

    /// Whether the client can dial a peer it is given (`connectTo:`). libtorrent does (`connect_peer`),
    /// qBittorrent does (`/api/v2/torrents/addPeers`). aria2 has no way to add a peer by address, and
    /// Transmission 3.00's RPC has none either: those two only accept incoming connections (and find
    /// peers through trackers, where Transmission drops 127.0.0.0/8 addresses): the other side must
    /// dial their `peerAddress`.
    var canDialPeers: Bool {
        switch self {
        case .libtorrent, .qbittorrent: true
        case .aria2, .transmission: false
        }
    }

    /// Whether the client creates a torrent's empty files when it downloads it (Transmission 3.00 does
    /// not; pass `allowMissingEmptyFiles: !kind.createsEmptyFiles` to `assertSameFiles`).
    var createsEmptyFiles: Bool { self != .transmission }

    /// A new, idle client whose configuration, logs and state live in `workDirectory` (created).
    ///
    /// - Parameter lifetime: a safety net: the client's process ends after this long in any case.
    func make(workDirectory: URL, lifetime: Duration = .seconds(300)) -> any RealClient {
        switch self {
        case .libtorrent: LibtorrentClient(workDirectory: workDirectory, lifetime: lifetime)
        case .aria2: Aria2Client(workDirectory: workDirectory, lifetime: lifetime)
        case .transmission: TransmissionClient(workDirectory: workDirectory, lifetime: lifetime)
        case .qbittorrent: QBittorrentClient(workDirectory: workDirectory, lifetime: lifetime)
        }
    }

    /// For `.enabled(if:)`: the client is here, or the interop tests are required (then fail loudly).
    var shouldRun: Bool { isInstalled || Interop.isRequired }

    /// Throws, saying what to install, when the client is missing.
    func require() throws {
        guard isInstalled else {
            throw RealClientError("\(self) is missing: install \(package) (and curl)")
        }
    }
}

/// What a client reports about its one torrent.
struct TransferStatus: Sendable, CustomStringConvertible {
    /// The client's own word for its state ("seeding", "stalledUP", "active", "6"...).
    var state: String
    /// 0 to 1: the share of the wanted bytes the client has and has verified.
    var progress: Double
    var bytesDone: Int64
    var totalBytes: Int64
    /// Peers connected to it now.
    var peers: Int
    /// Payload bytes per second.
    var downloadRate: Int64
    var uploadRate: Int64
    /// Payload bytes sent and received since the client started.
    var uploaded: Int64
    var downloaded: Int64
    /// The client has every piece, verified, and (for a leecher) written out: the files can be read.
    var isComplete: Bool
    /// An error the client reports about the torrent (missing files, a storage error).
    var error: String?

    var description: String {
        "\(state), \(String(format: "%.1f", progress * 100))% (\(bytesDone)/\(totalBytes) B), \(peers) peers, "
            + "down \(downloadRate) B/s, up \(uploadRate) B/s, uploaded \(uploaded) B, downloaded \(downloaded) B"
            + (isComplete ? ", complete" : "") + (error.map { ", error: \($0)" } ?? "")
    }
}

/// One real client process with one torrent, seeding or downloading on loopback.
///
/// Every client listens on 127.0.0.1 only, with DHT, local peer discovery, peer exchange and
/// UPnP/NAT-PMP off and encryption off (plain BitTorrent; Transmission only "prefers" plain), as
/// /work/shared/PEERS.md says. A client object runs at most one process: start it once, with
/// `startSeeding` or `startLeeching`; `stop()` (also run when the object goes away) ends it by its PID.
///
/// A Shoal test, Shoal downloading from aria2:
///
///     let aria2 = RealClientKind.aria2.make(workDirectory: directory.appendingPathComponent("aria2"))
///     defer { aria2.stop() }
///     try await aria2.startSeeding(torrent: torrent, dataDirectory: data, port: try LoopbackPorts.free())
///     let shoal = try BackgroundProcess.shoal(
///         ["get", torrent.path, "-o", download.path, "--peer", "\(aria2.peerAddress!)",
///          "--port", "\(try LoopbackPorts.free())"], logDirectory: directory)
///     defer { shoal.stop() }
///     // wait for shoal to exit, then:
///     try assertSameFiles(source: data.appendingPathComponent(name), downloaded: download.appendingPathComponent(name))
///
/// and aria2 downloading from Shoal: `startLeeching` first, then `shoal seed ... --peer
/// \(aria2.peerAddress!)` (aria2 cannot dial), then `aria2.waitUntilComplete(timeout:)`.
protocol RealClient: AnyObject, Sendable, CustomStringConvertible {
    var kind: RealClientKind { get }

    /// The address its peers can dial, once started.
    var peerAddress: PeerAddress? { get }

    /// Its process (for PIDs, CPU time, logs), once started.
    var process: BackgroundProcess? { get }

    /// Seeds `torrent` from `dataDirectory`, the directory that holds the torrent's content (the
    /// file of a single-file torrent, or its top folder), listening for peers on `port`. Returns once
    /// the client has checked the data and seeds: a leecher can start. Throws if the data does not
    /// check out or the client is not seeding within `timeout`.
    ///
    /// - Parameter peers: peers for the seed to dial (needs `kind.canDialPeers`: aria2 and
    ///   Transmission cannot, and throw): how a seed reaches a leecher that cannot dial itself.
    func startSeeding(
        torrent: URL, dataDirectory: URL, port: Int, connectTo peers: [PeerAddress], timeout: Duration
    ) async throws

    /// Downloads `torrent` into `downloadDirectory`, listening on `port`. Returns once the client
    /// runs with the torrent added and listens.
    ///
    /// - Parameter peers: peers to dial, again while it has no peer. Only where `kind.canDialPeers`:
    ///   aria2 and Transmission throw when given peers, since they cannot dial an address: the other
    ///   side must dial their `peerAddress`.
    func startLeeching(torrent: URL, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]) async throws

    /// What the client reports now; throws if it cannot be asked (its process died).
    func status() async throws -> TransferStatus

    /// Stops the process (SIGTERM, then SIGKILL after a grace period). Idempotent.
    func stop()
}

extension RealClient {
    func startSeeding(
        torrent: URL, dataDirectory: URL, port: Int, connectTo peers: [PeerAddress] = [],
        timeout: Duration = .seconds(30)
    ) async throws {
        try await startSeeding(
            torrent: torrent, dataDirectory: dataDirectory, port: port, connectTo: peers, timeout: timeout)
    }

    func startLeeching(torrent: URL, downloadDirectory: URL, port: Int) async throws {
        try await startLeeching(torrent: torrent, downloadDirectory: downloadDirectory, port: port, connectTo: [])
    }

    /// Waits until the client has the whole torrent (`status().isComplete`), at most `timeout`;
    /// throws if it reports an error, its process ends first, or time runs out (with its logs).
    @discardableResult
    func waitUntilComplete(timeout: Duration) async throws -> TransferStatus {
        var last: TransferStatus?
        return try await poll(
            "\(kind) to complete", timeout: timeout, interval: .milliseconds(100),
            context: { [self] in "last status: \(last.map(String.init(describing:)) ?? "none")\n\(self)" }
        ) {
            // Was it running before we asked? Then a status read after its exit is its final one.
            let wasRunning = process?.isRunning ?? false
            let status = try await self.status()
            last = status
            if status.isComplete { return status }
            if let error = status.error { throw RealClientError("\(kind) reports an error: \(error)\n\(self)") }
            if !wasRunning { throw RealClientError("\(kind) stopped before completing: \(status)\n\(self)") }
            return nil
        }
    }

    /// Throws, saying why, when peers are given to a client that cannot dial them.
    func checkCanDial(_ peers: [PeerAddress]) throws {
        if !peers.isEmpty && !kind.canDialPeers {
            throw RealClientError(
                "\(kind) cannot dial a peer by address (asked to dial \(peers)): "
                    + "the other side must dial its peer port instead")
        }
    }
}

/// The part of a client's state that all clients keep.
struct ClientRun: Sendable {
    enum Role: String, Sendable {
        case seed, leech
    }

    var process: BackgroundProcess?
    var role: Role?
    var port: Int?
    /// The address it listens on (127.0.0.1, or its own in a test network namespace).
    var host = "127.0.0.1"

    var peerAddress: PeerAddress? { port.map { PeerAddress(host: host, port: $0) } }

    /// "aria2 seed on 127.0.0.1:PORT" and the process's logs.
    func describe(_ kind: RealClientKind, extra: String = "") -> String {
        guard let process, let role else { return "\(kind) (not started)" }
        return "\(kind) \(role.rawValue) on \(peerAddress.map(String.init(describing:)) ?? "?"): \(process)"
            + (extra.isEmpty ? "" : "\n  \(extra)")
    }

    /// Throws unless this is the first start.
    func checkNotStarted(_ kind: RealClientKind) throws {
        if process != nil { throw RealClientError("\(kind): this client object was already started") }
    }
}

/// The environment for a child: ours without the settings of a pyenv or virtualenv Python.
func cleanChildEnvironment() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    for key in environment.keys where key.hasPrefix("PYTHON") || key == "VIRTUAL_ENV" {
        environment[key] = nil
    }
    return environment
}

/// The last `count` lines of a log file, or a note that it is missing.
func logTail(_ url: URL, lines count: Int = 15) -> String {
    guard let data = try? Data(contentsOf: url) else { return "(no \(url.lastPathComponent))" }
    return "\(url.lastPathComponent) (end): " + BackgroundProcess.tail(String(decoding: data, as: UTF8.self), lines: count)
}

extension BackgroundProcess {
    /// `shoal ARGUMENTS` (`get`, `seed`) in the background: the binary that `Interop.shoalBinary()` finds.
    static func shoal(
        _ arguments: [String], name: String = "shoal", logDirectory: URL, lifetime: Duration = .seconds(300)
    ) throws -> BackgroundProcess {
        try BackgroundProcess(
            name: name, executable: try Interop.shoalBinary(), arguments: arguments, logDirectory: logDirectory,
            lifetime: lifetime)
    }
}
