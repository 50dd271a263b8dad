#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalProcess
import Synchronization

/// aria2c as a peer, driven over its JSON-RPC on 127.0.0.1.
///
/// aria2 cannot be told a peer's address: it finds peers through trackers (or the DHT) and accepts
/// incoming connections. With no tracker, the other side must dial its `peerAddress`. It listens
/// on 127.0.0.1 only (`--interface`, IPv6 off). As a seed it checks the data first
/// (`--check-integrity`) and seeds until stopped (`--seed-ratio=0.0`); as a leecher it stops seeding
/// when it completes (`--seed-time=0`) but keeps running, for the RPC, until stopped.
/// `--stop-with-process` ends it when this test process ends.
final class Aria2Client: RealClient {
    let kind = RealClientKind.aria2
    let workDirectory: URL
    let lifetime: Duration
    private let run = Mutex(Run())

    /// aria2's download id for our one torrent, chosen here (`--gid`).
    static let gid = "5ea15ea15ea15ea1"
    static let secret = "shoal"

    private struct Run: Sendable {
        var common = ClientRun()
        var rpcPort: Int?
    }

    init(workDirectory: URL, lifetime: Duration = .seconds(300)) {
        self.workDirectory = workDirectory
        self.lifetime = lifetime
    }

    deinit { stop() }

    var process: BackgroundProcess? { run.withLock { $0.common.process } }
    var peerAddress: PeerAddress? { run.withLock { $0.common.peerAddress } }
    var description: String {
        run.withLock { $0.common.describe(kind, extra: logTail(workDirectory.appendingPathComponent("aria2.log"))) }
    }

    /// The aria2c options for a loopback peer (PEERS.md), without the torrent and role.
    static func loopbackOptions(port: Int) -> [String] {
        [
            "--no-conf=true", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--file-allocation=none", "--summary-interval=0",
            "--bt-external-ip=127.0.0.1", "--interface=127.0.0.1", "--disable-ipv6=true",
            "--bt-require-crypto=false", "--bt-min-crypto-level=plain", "--bt-force-encryption=false",
            "--listen-port=\(port)", "--auto-save-interval=0", "--bt-save-metadata=false",
            "--max-overall-upload-limit=0", "--max-overall-download-limit=0",
        ]
    }

    func startSeeding(
        torrent: URL, dataDirectory: URL, port: Int, connectTo peers: [PeerAddress], timeout: Duration
    ) async throws {
        try checkCanDial(peers)
        try await start(.seed, torrent: torrent, directory: dataDirectory, port: port,
            roleOptions: ["--seed-ratio=0.0", "--check-integrity=true"])
        try await poll("aria2 to check its data and seed", timeout: timeout, context: { self.description }) {
            let status = try await self.status()
            if let error = status.error { throw RealClientError("aria2 cannot seed: \(error)\n\(self)") }
            return status.isComplete ? status : nil
        }
    }

    func startLeeching(
        torrent: URL, downloadDirectory: URL, port: Int, connectTo peers: [PeerAddress]
    ) async throws {
        try checkCanDial(peers)
        try await start(.leech, torrent: torrent, directory: downloadDirectory, port: port,
            roleOptions: ["--seed-time=0"])
    }

    private func start(
        _ role: ClientRun.Role, torrent: URL, directory: URL, port: Int, roleOptions: [String]
    ) async throws {
        try kind.require()
        try run.withLock { try $0.common.checkNotStarted(kind) }
        let rpcPort = try LoopbackPorts.free()
        let arguments = Self.loopbackOptions(port: port) + roleOptions + [
            "--enable-rpc=true", "--rpc-listen-port=\(rpcPort)", "--rpc-listen-all=false",
            "--rpc-secret=\(Self.secret)", "--stop-with-process=\(getpid())",
            "--console-log-level=warn", "--log=\(workDirectory.appendingPathComponent("aria2.log").path)",
            "--log-level=info", "--gid=\(Self.gid)", "--dir=\(directory.path)", "--torrent-file=\(torrent.path)",
        ]
        let process = try BackgroundProcess(
            name: "aria2 \(role.rawValue)", executable: "aria2c", arguments: arguments,
            logDirectory: workDirectory, lifetime: lifetime)
        run.withLock {
            $0.common.process = process
            $0.common.role = role
            $0.common.port = port
            $0.rpcPort = rpcPort
        }
        // Up once its RPC answers with our download in it.
        _ = try await poll("aria2's RPC", timeout: .seconds(15), context: { self.description }) {
            if !process.isRunning { throw RealClientError("aria2 stopped at its start\n\(self)") }
            return try? await self.tellStatus()
        }
    }

    func status() async throws -> TransferStatus {
        guard let role = run.withLock({ $0.common.role }) else { throw RealClientError("aria2 was not started") }
        let download = try await tellStatus()
        let total = Int64(download.totalLength ?? "") ?? 0
        let done = Int64(download.completedLength ?? "") ?? 0
        let verifying = download.verifiedLength != nil || download.verifyIntegrityPending == "true"
        let complete: Bool
        switch role {
        case .seed: complete = download.status == "active" && download.seeder == "true" && !verifying
        case .leech: complete = download.status == "complete"
        }
        var error: String?
        if download.status == "error" || download.status == "removed" {
            error = "\(download.status ?? "?") (code \(download.errorCode ?? "?")): \(download.errorMessage ?? "")"
        }
        return TransferStatus(
            state: (download.status ?? "?") + (verifying ? " (checking)" : ""),
            progress: total > 0 ? Double(done) / Double(total) : 0, bytesDone: done, totalBytes: total,
            peers: Int(download.connections ?? "") ?? 0, downloadRate: Int64(download.downloadSpeed ?? "") ?? 0,
            uploadRate: Int64(download.uploadSpeed ?? "") ?? 0, uploaded: Int64(download.uploadLength ?? "") ?? 0,
            downloaded: done, isComplete: complete, error: error)
    }

    /// `aria2.tellStatus` of our download.
    private func tellStatus() async throws -> Download {
        guard let rpcPort = run.withLock({ $0.rpcPort }) else { throw RealClientError("aria2 was not started") }
        let request = """
            {"jsonrpc":"2.0","id":"shoal","method":"aria2.tellStatus","params":["token:\(Self.secret)","\(Self.gid)",\
            ["status","totalLength","completedLength","uploadLength","downloadSpeed","uploadSpeed","connections",\
            "seeder","errorCode","errorMessage","verifiedLength","verifyIntegrityPending"]]}
            """
        let response = try await LoopbackHTTP.post("http://127.0.0.1:\(rpcPort)/jsonrpc", body: request)
        guard let reply = try? JSONDecoder().decode(Reply.self, from: response.body) else {
            throw RealClientError("aria2 RPC answered \(response.status): \(response.text)")
        }
        guard let download = reply.result else {
            throw RealClientError("aria2 RPC error: \(reply.error?.message ?? response.text)")
        }
        return download
    }

    func stop() {
        run.withLock { $0.common.process }?.stop()
    }

    private struct Reply: Decodable {
        struct Failure: Decodable {
            var message: String?
        }

        var result: Download?
        var error: Failure?
    }

    /// aria2 reports every number as a string.
    private struct Download: Decodable {
        var status: String?
        var totalLength: String?
        var completedLength: String?
        var uploadLength: String?
        var downloadSpeed: String?
        var uploadSpeed: String?
        var connections: String?
        var seeder: String?
        var errorCode: String?
        var errorMessage: String?
        var verifiedLength: String?
        var verifyIntegrityPending: String?
    }
}
