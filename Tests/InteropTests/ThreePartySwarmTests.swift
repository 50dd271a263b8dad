#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalProcess
import Testing

/// A swarm of three on loopback: a libtorrent seed whose upload is limited, and two `shoal get
/// --seed` peers that know the seed and each other. The seed alone is too slow to be the only
/// source: pieces must go from one Shoal peer to the other.
@Suite(.enabled(if: RealClientKind.libtorrent.shouldRun))
struct ThreePartySwarmTests {
    /// The seed's upload limit, for both Shoal peers together.
    static let seedUploadLimit = 1 << 20

    @Test func piecesFlowBetweenTwoShoalPeers() async throws {
        try RealClientKind.libtorrent.require()
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let total = Int64(fixture.totalSize)
            let ports = try LoopbackPorts.free(3)
            let seed = LibtorrentClient(
                workDirectory: directory.appendingPathComponent("libtorrent"), lifetime: .seconds(90),
                uploadLimit: Self.seedUploadLimit)
            defer { seed.stop() }
            try await seed.startSeeding(torrent: fixture.torrent, dataDirectory: fixture.seedData, port: ports[0])

            // Each Shoal peer dials the seed and the other one (one of those two dials meets a port
            // not listening yet; the other makes the connection).
            let downloads = ["a", "b"].map { directory.appendingPathComponent("download-\($0)", isDirectory: true) }
            let peerA = try BackgroundProcess.shoal(
                SwarmCommand.getArguments(fixture, into: downloads[0], port: ports[1], peers: [ports[0], ports[2]], ["--seed"]),
                name: "shoal-a", logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(90))
            defer { peerA.stop() }
            let peerB = try BackgroundProcess.shoal(
                SwarmCommand.getArguments(fixture, into: downloads[1], port: ports[2], peers: [ports[0], ports[1]], ["--seed"]),
                name: "shoal-b", logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(90))
            defer { peerB.stop() }
            let peers = [peerA, peerB]

            try await poll(
                "both Shoal peers to complete", timeout: .seconds(45),
                context: { "\(peerA)\n\(peerB)\nseed: \(seed)" }
            ) {
                for peer in peers where !peer.isRunning {
                    throw RealClientError("\(peer.name) ended before the other completed\n\(peer)")
                }
                return peers.allSatisfy { $0.standardOutput.contains("Complete: all") } ? true : nil
            }
            // Ctrl-C after completion: a clean stop, exit status 0, with the totals printed.
            for peer in peers { try SwarmCommand.send(SIGINT, to: peer) }
            var uploaded: [Int64] = []
            for peer in peers {
                let status = try await SwarmCommand.exitStatus(of: peer)
                #expect(status == 0, "Ctrl-C after completion must exit 0\n\(peer)")
                #expect(peer.standardOutput.contains("Seeding until interrupted"), "\(peer)")
                let totals = try #require(SwarmCommand.transferTotals(peer.standardOutput), "no totals\n\(peer)")
                #expect(totals.downloaded >= total - Self.slack, "\(peer)")
                uploaded.append(totals.uploaded)
            }
            for download in downloads {
                try assertSameFiles(
                    source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
            }

            // The seed downloads nothing: what a Shoal peer uploaded went to the other Shoal peer.
            let most = uploaded.max() ?? 0
            #expect(
                most >= total / 8,
                "no Shoal peer served the other a meaningful share: uploaded \(uploaded) of \(total) B\n\(peerA)\n\(peerB)")
            // And from the seed's side: it did not send the torrent twice. Its status line comes every
            // 0.5 s; the peers are gone, so its count no longer moves.
            try await Task.sleep(for: .milliseconds(700))
            let seedStatus = try seed.status()
            #expect(seedStatus.downloaded == 0, "\(seedStatus)")
            #expect(
                seedStatus.uploaded <= 2 * total - total / 8,
                "the seed served nearly both copies itself: \(seedStatus); Shoal peers uploaded \(uploaded)")
            print(
                "ThreePartySwarmTests: seed uploaded \(seedStatus.uploaded) B, Shoal peers uploaded \(uploaded) B "
                    + "(torrent \(total) B)")
        }
    }

    /// What the endgame may fetch twice, and the rounding of the printed totals.
    static let slack: Int64 = 8 * 32_768
}
