import Foundation
import ShoalProcess
import Synchronization

/// qbittorrent-nox 4.5 as a peer, with a profile directory of its own (`--profile`), driven over its
/// Web API v2 on 127.0.0.1 (no login: `WebUI\LocalHostAuth=false`).
///
/// The configuration file turns DHT, LSD, PeX, UPnP/NAT-PMP and uTP off, refuses encryption
/// (`Session\Encryption=2`), binds 127.0.0.1, allows several connections from one IP and accepts
/// the legal notice; the harness reads the preferences back and refuses to run if any did not take.
/// It dials the peers it is given with `/api/v2/torrents/addPeers`, again every second while it has
/// no peer.
final class QBittorrentClient: RealClient {
    let kind = RealClientKind.qbittorrent
    let workDirectory: URL
    let lifetime: Duration
    private let run = Mutex(Run())

    private struct Run: Sendable {
        var common = ClientRun()
        var webPort: Int?
        var hash: String?
        var dialer: Task<Void, Never>?
    }

    init(workDirectory: URL, lifetime: Duration = .seconds(300)) {
        self.workDirectory = workDirectory
        self.lifetime = lifetime
    }

    deinit { stop() }

    var profile: URL { workDirectory.appendingPathComponent("qbittorrent-profile", isDirectory: true) }

    var process: BackgroundProcess? { run.withLock { $0.common.process } }
    var peerAddress: PeerAddress? { run.withLock { $0.common.peerAddress } }
    var description: String {
        run.withLock {
            $0.common.describe(
                kind, extra: logTail(profile.appendingPathComponent("qBittorrent/data/logs/qbittorrent.log")))
        }
    }

    static let uploadStates: Set<String> = ["uploading", "stalledUP", "queuedUP", "forcedUP"]
    static let checkingStates: Set<String> = ["checkingUP", "checkingDL", "checkingResumeData", "allocating", "moving"]

    func startSeeding(
        torrent: URL, dataDirectory: URL, port: Int, connectTo peers: [PeerAddress], timeout: Duration
    ) async throws {
        try await start(.seed, port: port)
        try await add(torrent: torrent, directory: dataDirectory)
        // qBittorrent checks the files of a torrent added without resume data; should it take them
        // as missing (it has done so in 4.5), a forced recheck makes it find them.
        var rechecked = false
        try await poll("qBittorrent to check its data and seed", timeout: timeout, context: { self.description }) {
            () -> Bool? in
            let info = try await self.info()
            let state = info.state ?? "?"
            if Self.checkingStates.contains(state) || state == "metaDL" || state == "unknown" { return nil }
            if Self.uploadStates.contains(state) && info.progress == 1 { return true }
            if !rechecked {
                rechecked = true
                try await self.post("torrents/recheck", ["hashes": info.hash])
                try await self.post("torrents/resume", ["hashes": info.hash])
                return nil
            }
            throw RealClientError(
                "qBittorrent finds the data in \(dataDirectory.path) incomplete: \(state), "
                    + "\(info.amountLeft ?? -1) bytes left\n\(self)")
        }
        startDialling(peers)
    }

    func startLeeching(
        torrent: URL, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]
    ) async throws {
        try await start(.leech, port: port)
        try await add(torrent: torrent, directory: downloadDirectory)
        startDialling(peers)
    }

    /// Downloads from a magnet link: the metadata comes from the peers it is given (BEP 9).
    func startLeeching(magnet: String, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]) async throws {
        try await start(.leech, port: port)
        try await add(.text("urls", magnet), named: magnet, directory: downloadDirectory)
        startDialling(peers)
    }

    /// Writes qBittorrent.conf, starts qbittorrent-nox, waits for its Web API and checks the settings.
    private func start(_ role: ClientRun.Role, port: Int) async throws {
        try kind.require()
        try run.withLock { try $0.common.checkNotStarted(kind) }
        let webPort = try LoopbackPorts.free()
        let configuration = profile.appendingPathComponent("qBittorrent/config", isDirectory: true)
        try FileManager.default.createDirectory(at: configuration, withIntermediateDirectories: true)
        let defaultSavePath = workDirectory.appendingPathComponent("qbittorrent-downloads").path
        let settings = """
            [LegalNotice]
            Accepted=true

            [BitTorrent]
            Session\\DHTEnabled=false
            Session\\LSDEnabled=false
            Session\\PeXEnabled=false
            Session\\Port=\(port)
            Session\\InterfaceAddress=127.0.0.1
            Session\\Encryption=2
            Session\\BTProtocol=TCP
            Session\\MultiConnectionsPerIp=true
            Session\\QueueingSystemEnabled=false
            Session\\GlobalMaxRatio=-1
            Session\\GlobalMaxSeedingMinutes=-1
            Session\\AnonymousModeEnabled=false
            Session\\DefaultSavePath=\(defaultSavePath)
            Session\\AddTorrentPaused=false
            Session\\Preallocation=false
            Session\\AddExtensionToIncompleteFiles=false
            Session\\TorrentContentLayout=Original

            [Network]
            PortForwardingEnabled=false

            [Preferences]
            Connection\\UPnP=false
            General\\Locale=en
            WebUI\\Enabled=true
            WebUI\\Address=127.0.0.1
            WebUI\\Port=\(webPort)
            WebUI\\LocalHostAuth=false
            WebUI\\CSRFProtection=false
            WebUI\\ClickjackingProtection=false
            WebUI\\HostHeaderValidation=false
            WebUI\\UseUPnP=false

            """
        try Data(settings.utf8).write(to: configuration.appendingPathComponent("qBittorrent.conf"))
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = profile.path  // Qt's own caches and fonts stay in the profile.
        environment["XDG_CONFIG_HOME"] = nil
        environment["XDG_DATA_HOME"] = nil
        environment["XDG_CACHE_HOME"] = nil
        let process = try BackgroundProcess(
            name: "qbittorrent \(role.rawValue)", executable: "qbittorrent-nox",
            arguments: ["--profile=\(profile.path)"], logDirectory: workDirectory, environment: environment,
            lifetime: lifetime)
        run.withLock {
            $0.common.process = process
            $0.common.role = role
            $0.common.port = port
            $0.webPort = webPort
        }
        try await poll("qBittorrent's Web API", timeout: .seconds(20), context: { self.description }) {
            () -> Bool? in
            if !process.isRunning { throw RealClientError("qBittorrent stopped at its start\n\(self)") }
            guard let response = try? await self.get("app/version"), response.status == 200 else { return nil }
            return true
        }
        let preferencesData = try await get("app/preferences").body
        let preferences = try JSONDecoder().decode(Preferences.self, from: preferencesData)
        guard preferences.dht == false, preferences.lsd == false, preferences.pex == false,
            preferences.upnp == false, preferences.encryption == 2, preferences.listenPort == port,
            preferences.currentInterfaceAddress == "127.0.0.1", preferences.bittorrentProtocol == 1
        else {
            throw RealClientError(
                "qBittorrent did not take the loopback settings: \(String(decoding: preferencesData, as: UTF8.self))"
                    + "\n\(self)")
        }
    }

    /// Adds the .torrent file (checking any data already in `directory`), and learns its hash.
    private func add(torrent: URL, directory: URL) async throws {
        try await add(.file("torrents", torrent), named: torrent.path, directory: directory)
    }

    /// Adds a torrent given by `source` (a file part, or a magnet link in `urls`), and learns its hash.
    private func add(_ source: LoopbackHTTP.FormField, named name: String, directory: URL) async throws {
        guard let webPort = run.withLock({ $0.webPort }) else { throw RealClientError("qBittorrent was not started") }
        let response = try await LoopbackHTTP.post(
            "http://127.0.0.1:\(webPort)/api/v2/torrents/add",
            multipart: [
                source, .text("savepath", directory.path), .text("skip_checking", "false"),
                .text("paused", "false"), .text("autoTMM", "false"), .text("contentLayout", "Original"),
            ])
        guard response.status == 200, response.text.hasPrefix("Ok") else {
            throw RealClientError("qBittorrent did not add \(name): \(response.status) \(response.text)\n\(self)")
        }
        let hash = try await poll("qBittorrent to list the torrent", timeout: .seconds(10)) {
            try await self.torrents().first?.hash
        }
        run.withLock { $0.hash = hash }
    }

    /// Adds `peers` now, and again every second while the torrent has no peer, until `stop()`.
    private func startDialling(_ peers: [PeerAddress]) {
        guard !peers.isEmpty else { return }
        let list = peers.map(\.description).joined(separator: "|")
        let task = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                if let info = try? await self.info(), (info.numSeeds ?? 0) + (info.numLeechs ?? 0) == 0 {
                    try? await self.post("torrents/addPeers", ["hashes": info.hash, "peers": list])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        run.withLock { $0.dialer = task }
    }

    func status() async throws -> TransferStatus {
        guard let role = run.withLock({ $0.common.role }) else { throw RealClientError("qBittorrent was not started") }
        let info = try await info()
        let state = info.state ?? "?"
        let size = info.size ?? 0
        let complete = info.progress == 1 && info.amountLeft == 0 && Self.uploadStates.contains(state)
        let error = state == "error" || (state == "missingFiles" && role == .seed) ? state : nil
        return TransferStatus(
            state: state, progress: info.progress ?? 0, bytesDone: info.completed ?? 0, totalBytes: size,
            peers: (info.numSeeds ?? 0) + (info.numLeechs ?? 0), downloadRate: info.dlspeed ?? 0,
            uploadRate: info.upspeed ?? 0, uploaded: info.uploaded ?? 0, downloaded: info.downloaded ?? 0,
            isComplete: complete, error: error)
    }

    private func info() async throws -> Info {
        guard let hash = run.withLock({ $0.hash }) else { throw RealClientError("qBittorrent has no torrent") }
        guard let info = try await torrents(hash: hash).first else {
            throw RealClientError("qBittorrent no longer lists torrent \(hash)\n\(self)")
        }
        return info
    }

    private func torrents(hash: String? = nil) async throws -> [Info] {
        let response = try await get("torrents/info" + (hash.map { "?hashes=\($0)" } ?? ""))
        guard response.status == 200 else {
            throw RealClientError("qBittorrent torrents/info answered \(response.status): \(response.text)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode([Info].self, from: response.body)
    }

    private func get(_ path: String) async throws -> LoopbackHTTP.Response {
        guard let webPort = run.withLock({ $0.webPort }) else { throw RealClientError("qBittorrent was not started") }
        return try await LoopbackHTTP.get("http://127.0.0.1:\(webPort)/api/v2/\(path)")
    }

    private func post(_ path: String, _ form: [String: String]) async throws {
        guard let webPort = run.withLock({ $0.webPort }) else { throw RealClientError("qBittorrent was not started") }
        let response = try await LoopbackHTTP.post(
            "http://127.0.0.1:\(webPort)/api/v2/\(path)", form: form.sorted { $0.key < $1.key })
        guard response.status == 200 else {
            throw RealClientError("qBittorrent \(path) answered \(response.status): \(response.text)")
        }
    }

    func stop() {
        let (task, process) = run.withLock { ($0.dialer, $0.common.process) }
        task?.cancel()
        process?.stop()
    }

    private struct Preferences: Decodable {
        var dht: Bool?
        var lsd: Bool?
        var pex: Bool?
        var upnp: Bool?
        var encryption: Int?
        var listenPort: Int?
        var currentInterfaceAddress: String?
        var bittorrentProtocol: Int?

        enum CodingKeys: String, CodingKey {
            case dht, lsd, pex, upnp, encryption
            case listenPort = "listen_port", currentInterfaceAddress = "current_interface_address"
            case bittorrentProtocol = "bittorrent_protocol"
        }
    }

    /// An entry of `/api/v2/torrents/info` (snake case in the JSON).
    private struct Info: Decodable {
        var hash: String
        var state: String?
        var progress: Double?
        var size: Int64?
        var completed: Int64?
        var amountLeft: Int64?
        var numSeeds: Int?
        var numLeechs: Int?
        var dlspeed: Int64?
        var upspeed: Int64?
        var uploaded: Int64?
        var downloaded: Int64?
    }
}
