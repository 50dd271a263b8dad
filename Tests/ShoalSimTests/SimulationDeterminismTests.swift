import ShoalCore
import ShoalSim
import ShoalSwarm
import Testing

/// A run depends only on its seed, and the hashing shortcut changes no outcome, only the SHA-1 work.
@Suite struct SimulationDeterminismTests {
    struct Outcome {
        var reports: [SimPeerReport]
        var hashes: [Int]
        var events: Int
    }

    /// A seed, 8 leechers (one with loss and jitter, so that the random draws matter) and, when
    /// `corrupting`, a second seed that serves bad data. Runs until every leecher has finished.
    /// With `until`, runs to that time whoever has finished, so that every event up to it is taken whatever
    /// the partitions (a run in windows checks its condition once a window).
    static func run(
        seed: UInt64, hashing: SimStorage.Hashing, corrupting: Bool = false, partitions: Int = 1, until: Double? = nil
    ) -> Outcome {
        let content = SimContent(length: 1 << 20, pieceLength: 32 << 10, seed: seed)
        let simulation = Simulation(
            content: content, configuration: .init(seed: seed, hashing: hashing, partitions: partitions))
        var peers = [simulation.addPeer(.init(link: SimLink(upload: 300_000, download: 10e6), isSeed: true))]
        if corrupting {
            peers.append(
                simulation.addPeer(
                    .init(link: SimLink(upload: 300_000, download: 10e6), isSeed: true, corruptsUploads: true)))
        }
        let leechers = (0..<8).map { index in
            simulation.addPeer(
                .init(
                    link: SimLink(
                        upload: 100_000, download: 2e6, latency: .milliseconds(10 + 5 * index),
                        loss: index == 0 ? 0.02 : 0, jitter: index == 0 ? .milliseconds(30) : .zero)))
        }
        peers += leechers
        if let until {
            #expect(simulation.run(until: .seconds(until), maxEvents: 2_000_000) == .deadline)
            return Outcome(
                reports: peers.map(simulation.report), hashes: peers.map(simulation.hashesComputed),
                events: simulation.eventsProcessed)
        }
        let stop = simulation.run(until: .seconds(600), maxEvents: 2_000_000) { simulation in
            !leechers.allSatisfy { simulation.report($0).finishedAt != nil }
        }
        #expect(stop == .condition)
        for peer in leechers { #expect(simulation.machine(peer).isComplete, "\(peer)") }
        return Outcome(
            reports: peers.map(simulation.report), hashes: peers.map(simulation.hashesComputed),
            events: simulation.eventsProcessed)
    }

    /// The same seed twice gives the same reports for every peer (join, finish and leave times, bytes
    /// sent and received, bans) and the same number of events; another seed gives other finish times.
    @Test func sameSeedSameRun() {
        let first = Self.run(seed: 11, hashing: .shortcut)
        let second = Self.run(seed: 11, hashing: .shortcut)
        let other = Self.run(seed: 12, hashing: .shortcut)
        let same = first.reports == second.reports
        #expect(same)
        #expect(first.events == second.events)
        let differs = first.reports.map(\.finishedAt) != other.reports.map(\.finishedAt)
        #expect(differs)
        print("determinism: \(first.events) events; finishes \(first.reports.compactMap(\.finishedAt))")
    }

    /// `.full` hashes every piece a leecher downloads (8 leechers × 32 pieces at least), `.shortcut`
    /// hashes none of honest data, and the two give identical reports.
    @Test func shortcutHashingMatchesFullHashing() {
        let full = Self.run(seed: 21, hashing: .full)
        let shortcut = Self.run(seed: 21, hashing: .shortcut)
        let same = full.reports == shortcut.reports
        #expect(same)
        #expect(full.events == shortcut.events)
        #expect(full.hashes.reduce(0, +) >= 8 * 32)
        #expect(shortcut.hashes.allSatisfy { $0 == 0 })
        print("hashing: full computed \(full.hashes), shortcut \(shortcut.hashes)")
    }

    /// With a peer that serves bad data, both modes still give identical reports (the same pieces fail,
    /// the same bans follow); the shortcut then computes SHA-1 only for the pieces that hold bad data, far
    /// fewer than `.full`.
    @Test func shortcutHashingMatchesFullHashingWithBadData() {
        let full = Self.run(seed: 31, hashing: .full, corrupting: true)
        let shortcut = Self.run(seed: 31, hashing: .shortcut, corrupting: true)
        let same = full.reports == shortcut.reports
        #expect(same)
        #expect(full.events == shortcut.events)
        #expect(full.reports.contains { !$0.bans.isEmpty })
        let computed = shortcut.hashes.reduce(0, +)
        #expect(computed > 0)
        #expect(computed * 10 < full.hashes.reduce(0, +))
        print("hashing with bad data: full computed \(full.hashes), shortcut \(shortcut.hashes)")
    }

    /// The nodes split between two or three workers, each on a thread of its own and in windows of the least
    /// one-way delay, give exactly the run of one worker: every report (with jitter, loss and a peer
    /// serving bad data) and the number of events.
    @Test(arguments: [2, 3])
    func partitionsGiveTheSameRun(partitions: Int) {
        let one = Self.run(seed: 41, hashing: .shortcut, corrupting: true, until: 30)
        let split = Self.run(seed: 41, hashing: .shortcut, corrupting: true, partitions: partitions, until: 30)
        let same = one.reports == split.reports
        #expect(same)
        #expect(one.events == split.events)
        #expect(one.reports.filter { $0.finishedAt != nil }.count >= 8, "the leechers finish within the run")
        print("partitions \(partitions): \(split.events) events, as one worker's \(one.events)")
    }

    /// Churn run by calls between windows: leechers that leave, others that join later (one with a link
    /// twice as short as any before, so the window shrinks), and a call that reads the swarm. Two workers
    /// give the reports, the reading and the event count of one.
    @Test func partitionsGiveTheSameRunWithChurn() {
        func run(partitions: Int) -> (reports: [SimPeerReport], seen: [Int], events: Int) {
            let content = SimContent(length: 1 << 20, pieceLength: 32 << 10, seed: 5)
            let simulation = Simulation(content: content, configuration: .init(seed: 5, partitions: partitions))
            simulation.addPeer(.init(link: SimLink(upload: 300_000, download: 10e6, latency: .milliseconds(20)), isSeed: true))
            let link = SimLink(upload: 100_000, download: 2e6, latency: .milliseconds(20))
            let first = (0..<8).map { _ in simulation.addPeer(.init(link: link)) }
            simulation.removePeer(first[0], at: .seconds(2))
            simulation.removePeer(first[1], at: .seconds(3.5))
            simulation.addPeer(.init(link: link), at: .seconds(2.5))
            simulation.addPeer(.init(link: SimLink(upload: 100_000, download: 2e6, latency: .milliseconds(10))), at: .seconds(4))
            var seen: [Int] = []
            simulation.schedule(at: .seconds(3.5)) { simulation in
                seen = (0..<simulation.peerCount).map { simulation.report(SimPeerID($0)).piecesVerified }
            }
            #expect(simulation.run(until: .seconds(30), maxEvents: 2_000_000) == .deadline)
            let reports = (0..<simulation.peerCount).map { simulation.report(SimPeerID($0)) }
            return (reports, seen, simulation.eventsProcessed)
        }
        let one = run(partitions: 1)
        let two = run(partitions: 2)
        let same = one.reports == two.reports
        #expect(same)
        #expect(one.seen == two.seen)
        #expect(one.events == two.events)
        #expect(one.reports.filter { $0.finishedAt != nil }.count >= 7, "the stayers finish")
        #expect(one.seen.count == 11 && one.seen.contains { $0 > 0 }, "the call saw the swarm under way")
        print("churn in partitions: \(two.events) events; seen at 3.5 s \(two.seen)")
    }
}
