import ShoalTestSupport
import ShoalCore
import Testing

@testable import ShoalSwarm

/// A small swarm around one choker: peers whose stats the test sets, and decisions applied as a runtime would.
struct ChokerBench {
    var choker: Choker
    var peers: [PeerStats]
    var random: SeededGenerator
    var now = Instant.seconds(1000)

    init(_ configuration: Choker.Configuration = .init(), peers: [PeerStats], seed: UInt64 = 1) {
        self.choker = Choker(configuration: configuration)
        self.peers = peers
        self.random = SeededGenerator(seed: seed)
    }

    /// Interested peers connected long ago, sending us the given rates.
    static func traders(_ rates: [Double], at now: Instant = .seconds(1000)) -> [PeerStats] {
        rates.enumerated().map { index, rate in
            PeerStats(
                key: PeerKey(index + 1), isInterested: true, amInterested: true, downloadRate: rate,
                connectedSince: now - .seconds(600), lastBlockReceived: rate > 0 ? now : nil)
        }
    }

    /// Rechokes and applies the decision to `peers`.
    @discardableResult
    mutating func rechoke(seeding: Bool = false) -> ChokeDecision {
        let decision = choker.rechoke(peers: peers, now: now, seeding: seeding, random: &random)
        for index in peers.indices {
            let unchoked = decision.unchoked.contains(peers[index].key)
            if unchoked, peers[index].unchokedSince == nil { peers[index].unchokedSince = now }
            if !unchoked { peers[index].unchokedSince = nil }
        }
        return decision
    }

    /// Moves time on, with every peer that has the last block time `now` keeping it fresh.
    mutating func advance(_ duration: Interval) {
        now = now + duration
        for index in peers.indices where peers[index].downloadRate > 0 { peers[index].lastBlockReceived = now }
    }
}

extension ChokeDecision {
    var regular: [PeerKey] { unchoked.filter { !optimistic.contains($0) } }
}

@Suite("Choker")
struct ChokerTests {
    @Test func unchokesTheFastestUploadersToUs() {
        var bench = ChokerBench(peers: ChokerBench.traders([100, 500, 300, 50, 400, 200]))
        let decision = bench.rechoke()
        #expect(decision.regular == [2, 3, 5, 6])
        #expect(decision.optimistic.count == 1)
        #expect([1, 4].contains(decision.optimistic[0]))
        #expect(decision.unchoked.count == 5)
        #expect(decision.newlyUnchoked == decision.unchoked)
        #expect(decision.newlyChoked.isEmpty)
    }

    @Test func respectsTheSlotCounts() {
        let rates: [Double] = [10, 20, 30, 40, 50, 60, 70, 80]
        for (regular, optimistic) in [(0, 0), (0, 1), (2, 1), (3, 2), (4, 0), (8, 1), (10, 3)] {
            let configuration = Choker.Configuration(regularSlots: regular, optimisticSlots: optimistic)
            var bench = ChokerBench(configuration, peers: ChokerBench.traders(rates))
            for _ in 0..<5 {
                let decision = bench.rechoke()
                #expect(decision.regular.count == min(regular, 8))
                #expect(decision.optimistic.count == min(optimistic, 8 - min(regular, 8)))
                bench.advance(.seconds(10))
            }
        }
    }

    @Test func unchokesOnlyInterestedPeers() {
        var peers = ChokerBench.traders([500, 400, 300])
        peers[0].isInterested = false
        peers[1].unchokedSince = .seconds(900)
        peers[1].isInterested = false
        var bench = ChokerBench(peers: peers)
        let decision = bench.rechoke()
        #expect(decision.unchoked == [3])
        #expect(decision.newlyChoked == [2])
        #expect(decision.newlyUnchoked == [3])
    }

    @Test func aFreeRiderGetsOnlyOptimisticTurns() {
        // Five peers trade with us; peer 6 never sends anything.
        var bench = ChokerBench(peers: ChokerBench.traders([500, 400, 300, 200, 100, 0]))
        var optimisticTurns = 0
        for _ in 0..<60 {
            let decision = bench.rechoke()
            #expect(!decision.regular.contains(6))
            if decision.optimistic.contains(6) { optimisticTurns += 1 }
            bench.advance(.seconds(10))
        }
        #expect(optimisticTurns >= 9, "about half of the 30 s turns: \(optimisticTurns)")
    }

    @Test func theOptimisticUnchokeRotatesEveryThirtySeconds() {
        var bench = ChokerBench(peers: ChokerBench.traders([500, 400, 300, 200, 10, 20, 30]))
        var history: [PeerKey] = []
        for _ in 0..<12 {
            let decision = bench.rechoke()
            history.append(decision.optimistic[0])
            bench.advance(.seconds(10))
        }
        for turn in stride(from: 0, to: 12, by: 3) {
            #expect(history[turn] == history[turn + 1] && history[turn] == history[turn + 2], "\(history)")
            if turn > 0 { #expect(history[turn] != history[turn - 1], "rotated: \(history)") }
        }
    }

    @Test func newPeersAreThreeTimesAsLikelyToBeTheOptimisticUnchoke() {
        let now = Instant.seconds(1000)
        var newWins = 0
        let runs = 2000
        for seed in 0..<runs {
            var peers = ChokerBench.traders([500, 400, 300, 200, 0, 0], at: now)
            peers[4].connectedSince = now - .seconds(10)  // new
            var bench = ChokerBench(peers: peers, seed: UInt64(seed))
            if bench.rechoke().optimistic == [5] { newWins += 1 }
        }
        let share = Double(newWins) / Double(runs)
        #expect(abs(share - 0.75) < 0.04, "new peer chosen \(share) of the time")
    }

    @Test func aSnubbingPeerLosesItsRegularSlot() {
        var peers = ChokerBench.traders([900, 400, 300, 200, 100])
        peers[0].lastBlockReceived = Instant.seconds(1000) - .seconds(61)  // fast, but silent for a minute
        var bench = ChokerBench(peers: peers)
        #expect(bench.choker.isSnubbed(bench.peers[0], now: bench.now))
        let decision = bench.rechoke()
        #expect(decision.regular == [2, 3, 4, 5])
        #expect(decision.optimistic == [1], "the only one left")

        // Not snubbed when we are not interested, or within the minute.
        peers[0].amInterested = false
        var uninterested = ChokerBench(peers: peers)
        #expect(uninterested.rechoke().regular.contains(1))
        peers[0].amInterested = true
        peers[0].lastBlockReceived = Instant.seconds(1000) - .seconds(59)
        var recent = ChokerBench(peers: peers)
        #expect(recent.rechoke().regular.contains(1))
    }

    @Test func aNewPeerIsNotSnubbedBeforeAMinute() {
        var peers = ChokerBench.traders([0, 0])
        peers[0].connectedSince = Instant.seconds(1000) - .seconds(30)
        let choker = Choker()
        #expect(!choker.isSnubbed(peers[0], now: .seconds(1000)))
        #expect(choker.isSnubbed(peers[1], now: .seconds(1000)))
    }

    @Test func tiesKeepTheUnchokedPeers() {
        // Nobody has sent anything yet: the first rechoke picks at random, the next ones keep the choice.
        var peers = ChokerBench.traders([0, 0, 0, 0, 0, 0, 0, 0])
        for index in peers.indices { peers[index].connectedSince = Instant.seconds(1000) - .seconds(5) }
        var bench = ChokerBench(.init(optimisticSlots: 0), peers: peers)
        let first = bench.rechoke()
        #expect(first.unchoked.count == 4)
        for _ in 0..<3 {
            bench.now = bench.now + .seconds(10)
            #expect(bench.rechoke().unchoked == first.unchoked)
        }
    }

    @Test func anOptimisticPeerThatProvesFastMovesToARegularSlotWhenItsTurnEnds() {
        var bench = ChokerBench(peers: ChokerBench.traders([500, 400, 300, 200, 10, 20]))
        let lucky = bench.rechoke().optimistic[0]
        bench.peers[lucky.rawValue - 1].downloadRate = 1000
        for _ in 0..<2 {
            bench.advance(.seconds(10))
            let decision = bench.rechoke()
            #expect(decision.optimistic == [lucky], "its turn is a turn")
            #expect(decision.regular == [1, 2, 3, 4])
        }
        bench.advance(.seconds(10))
        let after = bench.rechoke()
        #expect(after.regular.contains(lucky))
        #expect(after.regular.count == 4 && !after.regular.contains(4))
        #expect(after.optimistic.count == 1 && after.optimistic[0] != lucky)
    }

    @Test func seedingServesEveryLeecherInTurn() {
        // Twelve leechers, four regular slots and one optimistic; each unchoked peer takes 100 KiB/s.
        let now = Instant.seconds(1000)
        let peers = (1...12).map {
            PeerStats(key: PeerKey($0), isInterested: true, connectedSince: now - .seconds(600))
        }
        var bench = ChokerBench(.init(seedingQuota: 2 << 20), peers: peers)
        var firstServed: [PeerKey: Int] = [:]
        for round in 0..<40 {
            let decision = bench.rechoke(seeding: true)
            #expect(decision.unchoked.count == 5)
            for key in decision.unchoked where firstServed[key] == nil { firstServed[key] = round }
            for index in bench.peers.indices {
                let unchoked = decision.unchoked.contains(bench.peers[index].key)
                bench.peers[index].uploadRate = unchoked ? 100 * 1024 : 0
                if unchoked { bench.peers[index].bytesSent += 1000 * 1024 }
            }
            bench.advance(.seconds(10))
        }
        #expect(firstServed.count == 12)
        #expect(firstServed.values.max()! <= 8, "everyone served within 8 rounds: \(firstServed)")
        let sent = bench.peers.map(\.bytesSent)
        #expect(sent.max()! <= 2 * sent.min()!, "shares are even: \(sent)")
    }

    @Test func seedingRotatesSlowPeersAfterTheTimeQuota() {
        let now = Instant.seconds(1000)
        let peers = (1...3).map { PeerStats(key: PeerKey($0), isInterested: true, connectedSince: now - .seconds(600)) }
        var bench = ChokerBench(.init(regularSlots: 2, optimisticSlots: 0, seedingTimeQuota: .seconds(30)), peers: peers)
        var served = Set<PeerKey>()
        for _ in 0..<6 {
            served.formUnion(bench.rechoke(seeding: true).unchoked)
            bench.advance(.seconds(10))
        }
        #expect(served == [1, 2, 3])
    }

    @Test func seedingRanksUnchokedPeersByUploadRate() {
        let now = Instant.seconds(1000)
        var peers = (1...3).map {
            PeerStats(
                key: PeerKey($0), isInterested: true, uploadRate: Double($0) * 1000,
                connectedSince: now - .seconds(600), unchokedSince: now - .seconds(5))
        }
        peers.append(PeerStats(key: 4, isInterested: true, connectedSince: now - .seconds(600)))
        var bench = ChokerBench(.init(regularSlots: 2, optimisticSlots: 0), peers: peers)
        #expect(bench.rechoke(seeding: true).unchoked == [2, 3])
    }

    @Test func forgetsPeersThatLeft() {
        var bench = ChokerBench(peers: ChokerBench.traders([500, 400, 300, 200, 100, 50]))
        bench.rechoke()
        bench.peers.removeLast(3)
        bench.advance(.seconds(10))
        let decision = bench.rechoke()
        #expect(decision.unchoked == [1, 2, 3])
        #expect(bench.choker.optimistic.isEmpty)
        #expect(bench.choker.nextRechoke(now: bench.now) == bench.now + .seconds(10))
        // What it remembers of peers that left is dropped once it outgrows the peers present.
        var many = ChokerBench(.init(regularSlots: 40), peers: ChokerBench.traders((1...40).map(Double.init)))
        many.rechoke()
        #expect(many.choker.history.count == 40)
        many.peers.removeLast(37)
        many.advance(.seconds(10))
        many.rechoke()
        #expect(many.choker.history.keys.allSatisfy { $0.rawValue <= 3 })
    }

    @Test func equalRatesGoToThePeerThatGaveMostBeyondWhatItGot() {
        // Nobody sends now (peers with nothing we want) and all are choked: the peer that gave us the most
        // beyond what it took wins; a free-rider, which only took, comes last.
        var peers = ChokerBench.traders([0, 0, 0, 0])
        for index in peers.indices { peers[index].amInterested = false }
        peers[0].bytesSent = 1 << 20  // a free-rider: took 1 MiB, gave nothing
        peers[1].bytesReceived = 3 << 20
        peers[1].bytesSent = 1 << 20
        peers[2].bytesReceived = 1 << 20
        peers[3].bytesSent = 2 << 20
        peers[3].bytesReceived = 2 << 20
        for seed in 1...5 as ClosedRange<UInt64> {
            var bench = ChokerBench(.init(regularSlots: 2, optimisticSlots: 0), peers: peers, seed: seed)
            #expect(bench.rechoke().unchoked == [2, 3])
            var three = ChokerBench(.init(regularSlots: 3, optimisticSlots: 0), peers: peers, seed: seed)
            #expect(three.rechoke().unchoked == [2, 3, 4], "the free-rider still comes last")
        }
        // A faster peer still beats any balance.
        peers[0].downloadRate = 10
        var bench = ChokerBench(.init(regularSlots: 1, optimisticSlots: 0), peers: peers)
        #expect(bench.rechoke().unchoked == [1])
    }

    @Test func aPeerListedTwiceCountsOnce() {
        var bench = ChokerBench(peers: ChokerBench.traders([500, 400]))
        bench.peers.append(bench.peers[0])
        #expect(bench.rechoke().unchoked == [1, 2])
    }
}

@Suite("Choker configuration changes")
struct ChokerConfigurationTests {
    @Test func fewerOptimisticSlotsEndTheOldestTurns() {
        var bench = ChokerBench(.init(regularSlots: 1, optimisticSlots: 3), peers: ChokerBench.traders([500, 1, 2, 3, 4]))
        #expect(bench.rechoke().optimistic.count == 3)
        bench.choker.configuration.optimisticSlots = 1
        bench.advance(.seconds(10))
        let decision = bench.rechoke()
        #expect(decision.optimistic.count == 1)
        #expect(decision.unchoked.count == 2)
    }
}
