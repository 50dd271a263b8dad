import Foundation
import ShoalProcess
import Synchronization

/// transmission-daemon 3.00 as a peer, with a configuration directory of its own, driven over its
/// RPC (the JSON that `transmission-remote` speaks, answering the 409 with the session id).
///
/// Transmission's RPC has no call to add a peer by address (neither has `transmission-remote`),
/// and it drops 127.0.0.0/8 peers that a tracker gives it: the other side must dial its
/// `peerAddress`. It is slow on loopback by design (PEERS.md): a seed unchokes at its 10 s rechoke
/// and a leecher declares interest on the same period, so a transfer starts up to 10 s late.
/// It prefers plain connections (`encryption: 0`, "tolerated"; it has no setting that refuses
/// encryption) and never creates a torrent's empty files.
final class TransmissionClient: RealClient {
    let kind = RealClientKind.transmission
    let workDirectory: URL
    let lifetime: Duration
    private let run = Mutex(Run())

    private struct Run: Sendable {
        var common = ClientRun()
        var rpcPort: Int?
        var sessionID = ""
        var torrentID: Int?
    }

    /// Where it runs: nil on 127.0.0.1; else on a host of a test network (a namespace with an address of
    /// its own, where it accepts peers that a tracker gives it).
    let network: TestNetwork.Host?

    init(workDirectory: URL, lifetime: Duration = .seconds(300), network: TestNetwork.Host? = nil) {
        self.workDirectory = workDirectory
        self.lifetime = lifetime
        self.network = network
    }

    /// The address it listens and answers RPC on.
    var host: String { network?.address ?? "127.0.0.1" }

    deinit { stop() }

    var process: BackgroundProcess? { run.withLock { $0.common.process } }
    var peerAddress: PeerAddress? { run.withLock { $0.common.peerAddress } }
    var description: String {
        run.withLock {
            $0.common.describe(kind, extra: logTail(workDirectory.appendingPathComponent("transmission.log")))
        }
    }

    /// Torrent states in `torrent-get`'s `status`.
    enum State: Int {
        case stopped = 0, checkWait, checking, downloadWait, downloading, seedWait, seeding

        var name: String {
            switch self {
            case .stopped: "stopped"
            case .checkWait: "check-wait"
            case .checking: "checking"
            case .downloadWait: "download-wait"
            case .downloading: "downloading"
            case .seedWait: "seed-wait"
            case .seeding: "seeding"
            }
        }
    }

    func startSeeding(
        torrent: URL, dataDirectory: URL, port: Int, connectTo peers: [PeerAddress], timeout: Duration
    ) async throws {
        try checkCanDial(peers)
        try await start(.seed, port: port)
        let id = try await add(torrent: torrent, directory: dataDirectory, paused: true)
        _ = try await call("torrent-verify", arguments: #"{"ids":[\#(id)]}"#)
        let checked = try await poll("Transmission to check its data", timeout: timeout, context: { self.description }) {
            let torrent = try await self.torrent()
            let state = State(rawValue: torrent.status ?? 0)
            return state == .checkWait || state == .checking ? nil : torrent
        }
        guard checked.leftUntilDone == 0 else {
            throw RealClientError(
                "Transmission finds the data in \(dataDirectory.path) incomplete: \(checked.leftUntilDone ?? -1) bytes "
                    + "missing\n\(self)")
        }
        _ = try await call("torrent-start", arguments: #"{"ids":[\#(id)]}"#)
        try await poll("Transmission to seed", timeout: timeout, context: { self.description }) {
            let status = try await self.status()
            if let error = status.error { throw RealClientError("Transmission cannot seed: \(error)\n\(self)") }
            return status.isComplete ? status : nil
        }
    }

    func startLeeching(
        torrent: URL, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]
    ) async throws {
        try checkCanDial(peers)
        try await start(.leech, port: port)
        _ = try await add(torrent: torrent, directory: downloadDirectory, paused: false)
    }

    /// Leeches from a magnet link (`torrent-add` takes it as its `filename`): the metadata must come from a
    /// peer, which must dial Transmission (it drops loopback peers it learns).
    func startLeeching(magnet: String, downloadDirectory: URL, port: Int) async throws {
        try await start(.leech, port: port)
        _ = try await add(source: magnet, directory: downloadDirectory, paused: false)
    }

    /// Writes settings.json (PEERS.md), starts the daemon and waits for its RPC; checks that it took
    /// the settings that keep it on loopback.
    private func start(_ role: ClientRun.Role, port: Int) async throws {
        try kind.require()
        try run.withLock { try $0.common.checkNotStarted(kind) }
        let rpcPort = try LoopbackPorts.free()
        let configuration = workDirectory.appendingPathComponent("transmission-config", isDirectory: true)
        try FileManager.default.createDirectory(at: configuration, withIntermediateDirectories: true)
        let settings: [String: JSONValue] = [
            "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
            "port-forwarding-enabled": false, "peer-port": .number(port), "peer-port-random-on-start": false,
            "bind-address-ipv4": .string(host), "bind-address-ipv6": "::1",
            "rpc-enabled": true, "rpc-bind-address": .string(host), "rpc-port": .number(rpcPort),
            "rpc-whitelist": .string(network.map { "127.0.0.1,\($0.hostAddress)" } ?? "127.0.0.1"),
            "rpc-whitelist-enabled": true, "rpc-host-whitelist-enabled": false,
            "rpc-authentication-required": false,
            "download-dir": .string(workDirectory.appendingPathComponent("transmission-downloads").path),
            "incomplete-dir-enabled": false, "encryption": .number(0),
            "download-queue-enabled": false, "seed-queue-enabled": false, "queue-stalled-enabled": false,
            "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
            "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "alt-speed-enabled": false,
            "start-added-torrents": true, "blocklist-enabled": false, "watch-dir-enabled": false,
            "trash-original-torrent-files": false, "rename-partial-files": false, "message-level": .number(2),
        ]
        try Data(JSONValue.object(settings).json.utf8).write(to: configuration.appendingPathComponent("settings.json"))
        var command = (
            executable: "transmission-daemon",
            arguments: [
                "--foreground", "--config-dir", configuration.path,
                "--logfile", workDirectory.appendingPathComponent("transmission.log").path,
            ])
        if let network { command = network.command([command.executable] + command.arguments) }
        let process = try BackgroundProcess(
            name: "transmission \(role.rawValue)", executable: command.executable, arguments: command.arguments,
            logDirectory: workDirectory, lifetime: lifetime)
        run.withLock {
            $0.common.process = process
            $0.common.role = role
            $0.common.port = port
            $0.common.host = host
            $0.rpcPort = rpcPort
        }
        let session = try await poll("Transmission's RPC", timeout: .seconds(15), context: { self.description }) {
            if !process.isRunning { throw RealClientError("Transmission stopped at its start\n\(self)") }
            return try? await self.call(
                "session-get",
                arguments: #"{"fields":["version","peer-port","dht-enabled","lpd-enabled","pex-enabled","#
                    + #""utp-enabled","port-forwarding-enabled","encryption"]}"#)
        }
        let reply = try JSONDecoder().decode(Reply<Session>.self, from: session)
        guard let arguments = reply.arguments, arguments.peerPort == port, arguments.dhtEnabled == false,
            arguments.lpdEnabled == false, arguments.pexEnabled == false, arguments.utpEnabled == false,
            arguments.portForwardingEnabled == false, arguments.encryption == "tolerated"
        else {
            throw RealClientError(
                "Transmission did not take the loopback settings: \(String(decoding: session, as: UTF8.self))\n\(self)")
        }
    }

    /// `torrent-add` of a local .torrent file; returns the torrent's id.
    private func add(torrent: URL, directory: URL, paused: Bool) async throws -> Int {
        try await add(source: torrent.path, directory: directory, paused: paused)
    }

    /// `torrent-add` of a .torrent file's path or a magnet link; returns the torrent's id.
    private func add(source: String, directory: URL, paused: Bool) async throws -> Int {
        let arguments = JSONValue.object([
            "filename": .string(source), "download-dir": .string(directory.path), "paused": .bool(paused),
        ])
        let data = try await call("torrent-add", arguments: arguments.json)
        let reply = try JSONDecoder().decode(Reply<Added>.self, from: data)
        guard let id = (reply.arguments?.torrentAdded ?? reply.arguments?.torrentDuplicate)?.id else {
            throw RealClientError("Transmission did not add \(source): \(String(decoding: data, as: UTF8.self))")
        }
        run.withLock { $0.torrentID = id }
        return id
    }

    func status() async throws -> TransferStatus {
        let torrent = try await torrent()
        let state = State(rawValue: torrent.status ?? -1)
        let size = torrent.sizeWhenDone ?? 0
        let left = torrent.leftUntilDone ?? size
        // error 3 is a local error (storage); 1 and 2 are tracker warnings and errors.
        let error = torrent.error == 3 ? torrent.errorString ?? "local error" : nil
        return TransferStatus(
            state: state?.name ?? "status \(torrent.status ?? -1)", progress: torrent.percentDone ?? 0,
            bytesDone: torrent.haveValid ?? 0, totalBytes: size, peers: torrent.peersConnected ?? 0,
            downloadRate: torrent.rateDownload ?? 0, uploadRate: torrent.rateUpload ?? 0,
            uploaded: torrent.uploadedEver ?? 0, downloaded: torrent.downloadedEver ?? 0,
            isComplete: left == 0 && torrent.percentDone == 1 && (state == .seeding || state == .seedWait),
            error: error)
    }

    private func torrent() async throws -> Torrent {
        guard let id = run.withLock({ $0.torrentID }) else { throw RealClientError("Transmission has no torrent") }
        let data = try await call(
            "torrent-get",
            arguments: #"{"ids":[\#(id)],"fields":["id","status","percentDone","leftUntilDone","sizeWhenDone","#
                + #""haveValid","peersConnected","rateDownload","rateUpload","uploadedEver","downloadedEver","#
                + #""error","errorString"]}"#)
        let reply = try JSONDecoder().decode(Reply<Torrents>.self, from: data)
        guard let torrent = reply.arguments?.torrents.first else {
            throw RealClientError("Transmission does not know torrent \(id): \(String(decoding: data, as: UTF8.self))")
        }
        return torrent
    }

    /// One RPC call; returns the whole reply after checking that its `result` is "success".
    @discardableResult
    private func call(_ method: String, arguments: String) async throws -> Data {
        guard let rpcPort = run.withLock({ $0.rpcPort }) else { throw RealClientError("Transmission was not started") }
        let url = "http://\(host):\(rpcPort)/transmission/rpc"
        let body = #"{"method":"\#(method)","arguments":\#(arguments)}"#
        for _ in 0..<3 {
            let sessionID = run.withLock { $0.sessionID }
            let response = try await LoopbackHTTP.post(
                url, body: body, headers: ["X-Transmission-Session-Id": sessionID])
            if response.status == 409 {
                // The 409 page repeats the header: "X-Transmission-Session-Id: ID".
                guard let range = response.text.range(of: "X-Transmission-Session-Id: ") else {
                    throw RealClientError("Transmission answered 409 without a session id: \(response.text)")
                }
                let id = response.text[range.upperBound...].prefix { $0.isLetter || $0.isNumber }
                run.withLock { $0.sessionID = String(id) }
                continue
            }
            guard response.status == 200,
                let result = try? JSONDecoder().decode(Reply<Empty>.self, from: response.body).result
            else {
                throw RealClientError("Transmission RPC \(method) answered \(response.status): \(response.text)")
            }
            guard result == "success" else { throw RealClientError("Transmission RPC \(method): \(result)") }
            return response.body
        }
        throw RealClientError("Transmission RPC \(method): the session id kept changing")
    }

    func stop() {
        run.withLock { $0.common.process }?.stop()
    }

    private struct Empty: Decodable {}

    private struct Reply<Arguments: Decodable>: Decodable {
        var result: String
        var arguments: Arguments?
    }

    private struct Session: Decodable {
        var peerPort: Int?
        var dhtEnabled: Bool?
        var lpdEnabled: Bool?
        var pexEnabled: Bool?
        var utpEnabled: Bool?
        var portForwardingEnabled: Bool?
        var encryption: String?

        enum CodingKeys: String, CodingKey {
            case peerPort = "peer-port", dhtEnabled = "dht-enabled", lpdEnabled = "lpd-enabled"
            case pexEnabled = "pex-enabled", utpEnabled = "utp-enabled"
            case portForwardingEnabled = "port-forwarding-enabled", encryption
        }
    }

    private struct Added: Decodable {
        struct Torrent: Decodable {
            var id: Int
        }

        var torrentAdded: Torrent?
        var torrentDuplicate: Torrent?

        enum CodingKeys: String, CodingKey {
            case torrentAdded = "torrent-added", torrentDuplicate = "torrent-duplicate"
        }
    }

    private struct Torrents: Decodable {
        var torrents: [Torrent]
    }

    private struct Torrent: Decodable {
        var id: Int
        var status: Int?
        var percentDone: Double?
        var leftUntilDone: Int64?
        var sizeWhenDone: Int64?
        var haveValid: Int64?
        var peersConnected: Int?
        var rateDownload: Int64?
        var rateUpload: Int64?
        var uploadedEver: Int64?
        var downloadedEver: Int64?
        var error: Int?
        var errorString: String?
    }
}

/// A JSON value to write (settings files, RPC arguments), with keys in a stable order.
enum JSONValue: Sendable, ExpressibleByBooleanLiteral, ExpressibleByStringLiteral {
    case bool(Bool)
    case number(Int)
    case string(String)
    case object([String: JSONValue])

    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(stringLiteral value: String) { self = .string(value) }

    var json: String {
        switch self {
        case .bool(let value): return value ? "true" : "false"
        case .number(let value): return String(value)
        case .string(let value):
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            let data = (try? encoder.encode(value)) ?? Data("\"\"".utf8)
            return String(decoding: data, as: UTF8.self)
        case .object(let members):
            let body = members.sorted { $0.key < $1.key }
                .map { JSONValue.string($0.key).json + ": " + $0.value.json }
                .joined(separator: ",\n  ")
            return "{\n  " + body + "\n}"
        }
    }
}
