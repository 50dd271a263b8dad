import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

/// The metadata exchange in memory: peers with scripted behaviour answer its requests; time moves in
/// ticks of one second.
@Suite("Metadata exchange (BEP 9)")
struct MetadataExchangeTests {
    @Test func fetchesPiecesFromSeveralPeersAndChecksTheWhole() {
        var harness = ExchangeHarness(size: 100_000, peers: [.honest, .honest, .honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.closed.isEmpty)
        // Seven pieces dealt to three peers: each one served some.
        #expect(harness.served.values.allSatisfy { $0 >= 2 }, "\(harness.served)")
        #expect(harness.served.values.reduce(0, +) == 7)
    }

    @Test func aSinglePieceOfMetadataFromOnePeer() {
        var harness = ExchangeHarness(size: 300, peers: [.honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.requests == 1)
    }

    @Test func aRejectedPieceGoesToAnotherPeer() {
        var harness = ExchangeHarness(size: 40_000, peers: [.rejects, .honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.closed.isEmpty, "a reject is no offence")
        #expect(harness.served[1] == 3)
    }

    @Test func aLonePeerThatRejectsIsAskedAgainAfterTheRetryDelay() {
        var harness = ExchangeHarness(size: 40_000, peers: [.rejectsFirst(5)])
        harness.run()
        #expect(harness.succeeded)
        // Two rounds of rejects, each followed by the 30 s retry delay.
        #expect(harness.now >= Instant.zero + .seconds(60))
        #expect(harness.now < Instant.zero + .seconds(70))
    }

    @Test func anUnansweredRequestGoesToAnotherPeerAndALateAnswerIsStillTaken() {
        // The first peer takes every piece, answers after 17 s; at 15 s the second is asked, slower still.
        var harness = ExchangeHarness(size: 40_000, peers: [.slow(seconds: 17), .slow(seconds: 30)])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.asked[1] == 3, "the pieces went to the other peer at the timeout")
        #expect(harness.now == Instant.zero + .seconds(17), "the late answers were taken")
        #expect(harness.closed.isEmpty, "a late answer is not an offence")
    }

    @Test func aLoneSlowPeerIsAskedAgain() {
        var harness = ExchangeHarness(size: 20_000, peers: [.dropsFirst(1)])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.now >= Instant.zero + .seconds(15), "after the request timeout")
    }

    @Test func aPeerSendingAnotherSizeIsClosed() {
        var harness = ExchangeHarness(size: 40_000, peers: [.wrongTotalSize, .honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.closed[0]?.disposition == .close)
        #expect(harness.closed[1] == nil)
    }

    @Test func aPeerSendingAPieceNobodyAskedForIsClosed() {
        var harness = ExchangeHarness(size: 100_000, peers: [.unasked, .honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.closed[0] != nil)
        #expect(harness.closed[1] == nil)
        // A piece from a peer that never advertised ut_metadata.
        var exchange = MetadataExchange(configuration: .init(infoHashes: [harness.infoHash]))
        let actions = exchange.received(
            .data(piece: 0, totalSize: 10, block: ByteBuffer(repeating: 1, count: 10)), from: 9, now: .zero)
        #expect(actions.count == 1)
        guard case .close(9, _) = actions.first else {
            Issue.record("not closed: \(actions)")
            return
        }
    }

    @Test func aPeerWhoseMetadataFailsTheHashAloneIsBanned() {
        var harness = ExchangeHarness(size: 40_000, peers: [.corrupt(piece: 1)])
        harness.run(maxSteps: 200)
        #expect(harness.completed == nil)
        #expect(harness.closed[0]?.disposition == .ban)
        #expect(harness.exchange.peerCount == 0)
    }

    @Test func aLiarAmongHonestPeersIsFoundAndTheMetadataCompletes() {
        // 13 pieces, four to a peer: every peer contributes, and the liar spoils one of its own.
        for liar in 0..<3 {
            var behaviours: [ExchangeHarness.Behaviour] = [.honest, .honest, .honest]
            behaviours[liar] = .corrupt(piece: liar * 4 + 1)
            var harness = ExchangeHarness(size: 200_000, peers: behaviours)
            harness.run()
            #expect(harness.succeeded, "liar \(liar)")
            // Single-source attempts go in order of arrival: a liar first in line is convicted; a later
            // one is never asked again, since the first honest peer's attempt succeeds.
            #expect(harness.closed.keys.sorted() == (liar == 0 ? [PeerKey(0)] : []), "liar \(liar): \(harness.closed)")
            #expect(harness.closed[PeerKey(liar)].map { $0.disposition == .ban } ?? true)
        }
    }

    @Test func theSizeMostPeersAdvertiseIsFetched() {
        // The liar comes first with another size; two honest peers outvote it.
        var harness = ExchangeHarness(size: 40_000, peers: [.liesAboutSize(50_000), .honest, .honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.closed.isEmpty, "the liar's size was dropped, not fetched to the end")
    }

    @Test func aLiarWinningTheSizeVoteIsConvictedAndTheOtherSizeFetched() {
        var harness = ExchangeHarness(size: 40_000, peers: [.liesAboutSize(20_000), .honest])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.closed[0]?.disposition == .ban)
        #expect(harness.closed[1] == nil)
    }

    @Test func peersAdvertisingTooMuchMetadataAreNotAsked() {
        let metadata = [UInt8](repeating: 7, count: 1000)
        let hash = InfoHash.v1(ofInfo: metadata[...])
        var exchange = MetadataExchange(configuration: .init(infoHashes: [hash], maxMetadataSize: 500))
        #expect(exchange.peerAdvertised(1, metadataSize: 1000, now: .zero).isEmpty)
        #expect(exchange.peerAdvertised(2, metadataSize: nil, now: .zero).isEmpty, "no size: it lacks the metadata")
        #expect(exchange.progress == nil)
        #expect(exchange.nextDeadline(now: .zero) == nil)
    }

    @Test func aPeerLeavingHandsItsPiecesToOthers() {
        var harness = ExchangeHarness(size: 40_000, peers: [.silent, .honest], leaving: [0])
        harness.run()
        #expect(harness.succeeded)
        #expect(harness.now == Instant.zero, "no timeout was needed")
    }

    @Test func checksAVersion2InfoHashToo() {
        var harness = ExchangeHarness(size: 20_000, peers: [.honest], version2: true)
        harness.run()
        #expect(harness.succeeded)
    }

    @Test func nextDeadlineIsTheEarliestTimeout() {
        var exchange = MetadataExchange(configuration: .init(infoHashes: [.v1(Digest20(bytes: [UInt8](repeating: 1, count: 20))!)]))
        let start = Instant.zero + .seconds(5)
        let requests = exchange.peerAdvertised(1, metadataSize: 100_000, now: start)
        #expect(requests.count == 4, "at most four requests to one peer")
        #expect(exchange.nextDeadline(now: start) == start + .seconds(15))
        #expect(exchange.tick(now: start + .seconds(14)).isEmpty)
        // At the timeout the same peer, alone, is asked again.
        #expect(exchange.tick(now: start + .seconds(15)).count == 4)
    }

    /// Peers of every kind, many seeds: the exchange ends with the right metadata whenever an honest
    /// peer is there, never closes an honest peer, and never holds more than its size.
    @Test func hostileMixturesNeverStopAnHonestPeer() {
        let kinds: [ExchangeHarness.Behaviour] = [
            .silent, .rejects, .corrupt(piece: 0), .corrupt(piece: 2), .wrongTotalSize, .unasked,
            .liesAboutSize(33_333), .slow(seconds: 40), .dropsFirst(2),
        ]
        for seed in 0..<80 {
            var random = SeededGenerator(seed: UInt64(seed))
            var behaviours = (0..<(2 + Int(random.next() % 5))).map { _ in kinds[Int(random.next() % UInt64(kinds.count))] }
            let honest = Int(random.next() % UInt64(behaviours.count + 1))
            behaviours.insert(.honest, at: honest)
            var harness = ExchangeHarness(size: 45_000 + Int(random.next() % 10_000), peers: behaviours)
            harness.run(maxSteps: 20_000)
            let succeeded = harness.succeeded
            let closed = harness.closed.keys.sorted()
            #expect(succeeded, "seed \(seed): \(behaviours), closed \(closed), at \(harness.now)")
            #expect(!closed.contains(PeerKey(honest)), "seed \(seed): the honest peer was closed")
        }
    }
}

/// Peers answering a ``MetadataExchange`` as scripted.
struct ExchangeHarness {
    enum Behaviour: Hashable {
        case honest
        /// Never answers.
        case silent
        /// Rejects every request.
        case rejects
        /// Rejects its first `n` requests, then answers.
        case rejectsFirst(Int)
        /// Answers after this many seconds.
        case slow(seconds: Int)
        /// Ignores its first `n` requests, then answers.
        case dropsFirst(Int)
        /// Answers with this piece's bytes changed.
        case corrupt(piece: Int)
        /// Answers with another `total_size` than it advertised.
        case wrongTotalSize
        /// Answers each request with a piece it was not asked for (while there is one).
        case unasked
        /// Advertises this size and answers with its own bytes of that size.
        case liesAboutSize(Int)
    }

    let metadata: [UInt8]
    let infoHash: InfoHash
    var exchange: MetadataExchange
    var behaviours: [PeerKey: Behaviour] = [:]
    var now = Instant.zero
    var closed: [PeerKey: WireError] = [:]
    var completed: [UInt8]?
    /// The exchange completed with exactly the metadata (a Bool: a failure does not print it all).
    var succeeded: Bool { completed == metadata }
    var served: [PeerKey: Int] = [:]
    var requests = 0
    var asked: [PeerKey: Int] = [:]
    /// Peers that leave once they have been asked something.
    let leaving: Set<PeerKey>
    /// Answers due at a time.
    private var answers: [(due: Instant, key: PeerKey, message: MetadataMessage)] = []
    private var sizeOf: [PeerKey: Int] = [:]

    init(size: Int, peers: [Behaviour], version2: Bool = false, leaving: Set<PeerKey> = []) {
        self.leaving = leaving
        var random = SeededGenerator(seed: UInt64(size))
        metadata = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        infoHash = version2 ? InfoHash.v2(ofInfo: metadata[...]) : InfoHash.v1(ofInfo: metadata[...])
        exchange = MetadataExchange(configuration: .init(infoHashes: [infoHash]))
        var actions: [MetadataExchange.Action] = []
        for (index, behaviour) in peers.enumerated() {
            let key = PeerKey(index)
            behaviours[key] = behaviour
            var advertised = size
            if case .liesAboutSize(let lie) = behaviour { advertised = lie }
            sizeOf[key] = advertised
            actions += exchange.peerAdvertised(key, metadataSize: advertised, now: now)
        }
        apply(actions)
    }

    mutating func apply(_ actions: [MetadataExchange.Action]) {
        for action in actions {
            switch action {
            case .send(let key, let message):
                guard case .request(let piece) = message else {
                    Issue.record("unexpected \(action)")
                    continue
                }
                // A request the exchange sent before it learnt that the peer left goes nowhere.
                guard let behaviour = behaviours[key] else { continue }
                requests += 1
                asked[key, default: 0] += 1
                if leaving.contains(key) {
                    behaviours[key] = nil
                    apply(exchange.peerLeft(key, now: now))
                    continue
                }
                respond(behaviour, key: key, piece: piece)
            case .close(let key, let error):
                #expect(closed[key] == nil, "closed twice")
                closed[key] = error
                behaviours[key] = nil
                answers.removeAll { $0.key == key }
                apply(exchange.peerLeft(key, now: now))
            case .completed(let bytes):
                #expect(completed == nil, "completed twice")
                completed = bytes
            }
        }
    }

    private mutating func respond(_ behaviour: Behaviour, key: PeerKey, piece: Int) {
        let size = sizeOf[key]!
        func data(_ piece: Int, total: Int? = nil, corrupt: Bool = false, source: [UInt8]? = nil) -> MetadataMessage? {
            let bytes = source ?? metadata
            guard let length = MetadataMessage.length(ofPiece: piece, totalSize: bytes.count) else { return nil }
            var block = Array(bytes[(piece * 16384)..<(piece * 16384 + length)])
            if corrupt { block[0] ^= 0xFF }
            return .data(piece: piece, totalSize: total ?? bytes.count, block: ByteBuffer(bytes: block))
        }
        var reply: MetadataMessage?
        var delay = Interval.zero
        switch behaviour {
        case .honest: reply = data(piece)
        case .silent: reply = nil
        case .rejects: reply = .reject(piece: piece)
        case .rejectsFirst(let count): reply = asked[key]! <= count ? .reject(piece: piece) : data(piece)
        case .slow(let seconds):
            reply = data(piece)
            delay = .seconds(Int64(seconds))
        case .dropsFirst(let count): reply = asked[key]! <= count ? nil : data(piece)
        case .corrupt(let bad): reply = data(piece, corrupt: piece == bad)
        case .wrongTotalSize: reply = data(piece, total: metadata.count + 1)
        case .unasked:
            let state = exchange.peers[key]
            let unasked = (0..<MetadataMessage.pieceCount(totalSize: size)).first {
                state?.outstanding[$0] == nil && state?.late.contains($0) != true
            }
            reply = data(unasked ?? piece)
        case .liesAboutSize(let lie):
            reply = data(piece, source: Array(repeating: UInt8(lie & 0xFF), count: lie))
        }
        served[key, default: 0] += reply.map { if case .data = $0 { 1 } else { 0 } } ?? 0
        if let reply { answers.append((now + delay, key, reply)) }
    }

    /// Delivers answers and ticks until the exchange completes, nothing is left to do, or `maxSteps`.
    mutating func run(maxSteps: Int = 5_000) {
        var steps = 0
        while completed == nil && steps < maxSteps {
            steps += 1
            if let index = answers.firstIndex(where: { $0.due <= now }) {
                let answer = answers.remove(at: index)
                guard behaviours[answer.key] != nil else { continue }
                apply(exchange.received(answer.message, from: answer.key, now: now))
                continue
            }
            if behaviours.isEmpty { return }
            now = now + .seconds(1)
            apply(exchange.tick(now: now))
        }
    }
}

extension ExchangeHarness: CustomStringConvertible {
    /// Short, for failure messages (the metadata is not printed).
    var description: String {
        "exchange of \(metadata.count) bytes at \(now): closed \(closed.keys.sorted()), served \(served), complete \(completed != nil)"
    }
}
