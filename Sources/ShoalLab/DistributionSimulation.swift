import ShoalCore
import ShoalSim
import ShoalSwarm

/// One distribution experiment in the simulator, with the real engine: a seed with upload u_s and N
/// peers with upload u and download d_min start together; the distribution time is when the last of
/// them has the whole file verified.
///
/// - Peer-to-peer: everybody learns 50 random others from the swarm's directory (as from a tracker),
///   trades with the engine's rarest-first, tit-for-tat choking and pipelining, and keeps seeding once
///   complete.
/// - Client-server: peers know only the seed and leave as soon as they are complete, so the seed serves
///   everyone and nobody else uploads.
public struct DistributionSimulation: Sendable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case clientServer = "client-server"
        case peerToPeer = "peer-to-peer"
    }

    /// What one run gave.
    public struct Result: Sendable, Hashable {
        /// Virtual seconds until the last peer had the whole file (nil: not every peer finished in time).
        public var time: Double?
        public var finished: Int
        public var events: Int
        /// Bytes the seed's link sent, against u_s times the distribution time.
        public var seedUtilisation: Double
        public var simulatedPeers: Int
    }

    public var bounds: DistributionBounds
    public var pieceLength: Int
    /// One-way latency of every access link.
    public var latency: Interval
    public var tickInterval: Interval
    /// The runs stop at this many times the bound, finished or not.
    public var deadlineFactor: Double
    /// Threads one run uses (``Simulation/Configuration/partitions``): the result is the same.
    public var partitions: Int

    public init(
        bounds: DistributionBounds, pieceLength: Int = 64 << 10, latency: Interval = .milliseconds(25),
        tickInterval: Interval = .seconds(1), deadlineFactor: Double = 4, partitions: Int = 1
    ) {
        self.bounds = bounds
        self.pieceLength = pieceLength
        self.latency = latency
        self.tickInterval = tickInterval
        self.deadlineFactor = deadlineFactor
        self.partitions = partitions
    }

    /// Runs the experiment for `peers` peers; `seed` fixes every random choice.
    public func run(peers: Int, mode: Mode, seed: UInt64, content: SimContent? = nil) -> Result {
        let content = content ?? SimContent(length: Int64(bounds.fileSize), pieceLength: pieceLength, seed: seed)
        let simulation = Simulation(
            content: content, configuration: .init(seed: seed, tickInterval: tickInterval, partitions: partitions))
        let seedLink = SimLink(upload: bounds.serverUpload, download: bounds.minDownload, latency: latency)
        let peerLink = SimLink(upload: bounds.peerUpload, download: bounds.minDownload, latency: latency)
        let server: SimPeerID
        switch mode {
        case .peerToPeer:
            server = simulation.addPeer(.init(link: seedLink, isSeed: true))
            for _ in 0..<peers { simulation.addPeer(.init(link: peerLink)) }
        case .clientServer:
            server = simulation.addPeer(.init(link: seedLink, isSeed: true, announces: false))
            for _ in 0..<peers {
                simulation.addPeer(
                    .init(link: peerLink, leavesWhenFinished: true, announces: false, knownPeers: [server]))
            }
        }
        let bound = mode == .peerToPeer ? bounds.peerToPeer(peers: peers) : bounds.clientServer(peers: peers)
        simulation.run(until: .seconds(deadlineFactor * bound)) { $0.finishedCount < peers }
        // The last peer's finish, not the simulation's clock: a run on several threads stops at the end of
        // the window in which the last peer finished.
        let last = (1...peers).compactMap { simulation.report(SimPeerID(server.index + $0)).finishedAt }.max()
        let time = simulation.finishedCount == peers ? last.map { ($0 - .zero).seconds } : nil
        let sent = Double(simulation.report(server).bytesSent)
        let elapsed = max(time ?? (simulation.now - .zero).seconds, 1e-9)
        return Result(
            time: time, finished: simulation.finishedCount, events: simulation.eventsProcessed,
            seedUtilisation: sent / (bounds.serverUpload * elapsed), simulatedPeers: peers + 1)
    }
}
