import ArgumentParser
import FoundationEssentials
import ShoalCore
import ShoalLab
import ShoalSim

struct LabDistributionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distribution",
        abstract: "Client-server versus peer-to-peer distribution time, against the lecture's bounds.",
        discussion: """
            For each swarm size N: the lecture's bounds d_cs = max(N·F/u_s, F/d_min) and \
            d_P2P = max(F/u_s, F/d_min, N·F/(u_s + N·u)), and the distribution time measured in the \
            simulator with the real engine: client-server (peers know only the seed and upload nothing) and \
            peer-to-peer (rarest-first, choking, pipelining). The defaults are the lecture's: F/u = 1 hour, \
            u_s = 10u, d_min = u_s.
            """)

    @Option(help: "F, the file's size, e.g. 16M.")
    var fileSize: ByteCount = ByteCount(bytes: 16 << 20)

    @Option(help: "u, every peer's upload per second (default: F per hour).")
    var peerUpload: ByteCount?

    @Option(help: "u_s, the seed's upload per second (default: 10u).")
    var serverUpload: ByteCount?

    @Option(help: "d_min, every peer's download per second (default: u_s).")
    var minDownload: ByteCount?

    @Option(help: "The swarm sizes N, comma-separated.")
    var peers: String = "1,2,5,10,15,20,25,30,35"

    @Option(help: "Runs per N (each from its own seed).")
    var runs: Int = 1

    @Option(help: "Bytes per piece.")
    var pieceLength: ByteCount = ByteCount(bytes: 64 << 10)

    @Option(help: "Simulate client-server only up to this N (its virtual time grows as N·F/u_s).")
    var clientServerMax: Int = 1000

    @Option(help: "The first run's seed.")
    var seed: UInt64 = 1

    @Option(help: "Write the table and plot into this directory.")
    var out: String = "lab-distribution"

    func run() async throws {
        let sizes = peers.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else { throw ValidationError("--peers: positive numbers, comma-separated") }
        let file = Double(fileSize.bytes)
        let u = Double(peerUpload?.bytes ?? Int64((file / 3600).rounded()))
        let us = Double(serverUpload?.bytes ?? Int64(10 * u))
        let d = Double(minDownload?.bytes ?? Int64(us))
        let bounds = DistributionBounds(fileSize: file, serverUpload: us, peerUpload: u, minDownload: d)
        let experiment = DistributionSimulation(bounds: bounds, pieceLength: Int(pieceLength.bytes))
        print("F = \(fileSize), u = \(ByteCount(bytes: Int64(u)))/s, u_s = \(ByteCount(bytes: Int64(us)))/s, d_min = \(ByteCount(bytes: Int64(d)))/s, F/u = \(file / u) s")
        for n in sizes {
            let clock = ContinuousClock()
            let start = clock.now
            let p2p = experiment.run(peers: n, mode: .peerToPeer, seed: seed)
            let p2pWall = clock.now - start
            var line = "N=\(n) d_P2P=\(bounds.peerToPeer(peers: n)) p2p=\(p2p.time.map { "\($0)" } ?? "-") ratio=\(p2p.time.map { $0 / bounds.peerToPeer(peers: n) } ?? .nan) seedUse=\(p2p.seedUtilisation) events=\(p2p.events) wall=\(p2pWall)"
            if n <= clientServerMax {
                let start = clock.now
                let cs = experiment.run(peers: n, mode: .clientServer, seed: seed)
                line += " | d_cs=\(bounds.clientServer(peers: n)) cs=\(cs.time.map { "\($0)" } ?? "-") ratio=\(cs.time.map { $0 / bounds.clientServer(peers: n) } ?? .nan) seedUse=\(cs.seedUtilisation) wall=\(clock.now - start)"
            }
            print(line)
        }
    }
}
