import ShoalCore
import Testing

@testable import ShoalSwarm

@Suite("Connection planner")
struct ConnectionPlannerTests {
    private let start = Instant(nanoseconds: 1_000_000_000)
    private func at(_ seconds: Int64) -> Instant { start + .seconds(seconds) }
    private func addresses(_ count: Int) -> [PeerAddress] {
        (1...count).map { PeerAddress("10.0.0.\($0):6881")! }
    }

    @Test func dialsInArrivalOrderWithinBothLimits() {
        var planner = ConnectionPlanner(limits: .init(maxConnections: 5, maxHalfOpen: 3))
        let peers = addresses(8)
        planner.add(peers, source: .tracker, now: at(0))
        #expect(planner.dialsDue(now: at(0)) == Array(peers[0..<3]))
        #expect(planner.dialsDue(now: at(0)).isEmpty, "half-open limit")
        do {
            let accepted = planner.connected(peers[0], incoming: false, now: at(1))
            #expect(accepted)
        }
        do {
            let accepted = planner.connected(peers[1], incoming: false, now: at(1))
            #expect(accepted)
        }
        // Two connected and one pending: room for two more in all, both may be half-open.
        #expect(planner.dialsDue(now: at(1)) == Array(peers[3..<5]))
        #expect(planner.dialsDue(now: at(1)).isEmpty, "connection limit")
        #expect(planner.connectedPeers == 2 && planner.pendingDials == 3)
    }

    /// A peer that accepts and hangs up before the handshake (it has no room) is a failed dial: it is
    /// retried with growing delays and then forgotten, not redialled every `baseRetry` for ever (the
    /// simulator showed swarms of full peers doing that).
    @Test func closedBeforeHandshakeBacksOffAndIsForgotten() {
        var planner = ConnectionPlanner(limits: .init(baseRetry: .seconds(10), maxRetry: .seconds(40), maxFailures: 3))
        let peer = addresses(1)[0]
        planner.add([peer], source: .tracker, now: at(0))
        var now = at(0)
        var delays: [Int64] = []
        for _ in 0..<3 {
            #expect(planner.dialsDue(now: now) == [peer])
            let accepted = planner.connected(peer, incoming: false, now: now)
            #expect(accepted)
            planner.disconnected(peer, misbehaved: false, handshaken: false, now: now)
            guard let next = planner.nextWakeup else { break }
            delays.append((next - now).nanoseconds / 1_000_000_000)
            now = next
        }
        #expect(delays == [10, 20])
        #expect(planner.knownPeers == 0)
        // After a handshake a clean close keeps the peer, retried after the base delay.
        planner.add([peer], source: .tracker, now: now)
        _ = planner.dialsDue(now: now)
        _ = planner.connected(peer, incoming: false, now: now)
        planner.disconnected(peer, misbehaved: false, now: now)
        #expect(planner.nextWakeup == now + .seconds(10))
    }

    @Test func backsOffExponentiallyAndForgets() {
        var planner = ConnectionPlanner(
            limits: .init(baseRetry: .seconds(10), maxRetry: .seconds(40), maxFailures: 4))
        let peer = addresses(1)[0]
        planner.add([peer], source: .manual, now: at(0))
        var now = at(0)
        var delays: [Int64] = []
        for _ in 0..<3 {
            #expect(planner.dialsDue(now: now) == [peer])
            planner.connectFailed(peer, now: now)
            let wakeup = planner.nextWakeup!
            delays.append((wakeup - now).nanoseconds / 1_000_000_000)
            #expect(planner.dialsDue(now: wakeup - .seconds(1)).isEmpty)
            now = wakeup
        }
        #expect(delays == [10, 20, 40])
        #expect(planner.dialsDue(now: now) == [peer])
        planner.connectFailed(peer, now: now)
        #expect(planner.knownPeers == 0, "forgotten after maxFailures")
    }

    @Test func aBanIsOfTheHostSoTheBannedPeerCannotComeBackFromAnotherPort() {
        var planner = ConnectionPlanner(limits: .init(maxConnections: 10))
        let banned = PeerAddress("10.1.2.3:51413")!
        planner.ban(banned)
        let again = planner.connected(PeerAddress("10.1.2.3:40001")!, incoming: true, now: at(0))
        #expect(!again, "the same host from a new port")
        #expect(planner.isBanned(PeerAddress("10.1.2.3:6881")!))
        planner.add([PeerAddress("10.1.2.3:6881")!, PeerAddress("10.1.2.4:6881")!], source: .tracker, now: at(0))
        #expect(planner.dialsDue(now: at(0)) == [PeerAddress("10.1.2.4:6881")!], "only the other host is dialled")
        let other = planner.connected(PeerAddress("[::1]:6881")!, incoming: true, now: at(0))
        #expect(other)
    }

    @Test func ourOwnAddressIsForgottenWithoutBanningItsHost() {
        var planner = ConnectionPlanner()
        let own = PeerAddress("127.0.0.1:6881")!
        let neighbour = PeerAddress("127.0.0.1:6882")!
        planner.add([own, neighbour], source: .tracker, now: at(0))
        #expect(planner.dialsDue(now: at(0)) == [own, neighbour])
        planner.forgetSelf(own)
        #expect(planner.isBanned(own) && !planner.isBanned(neighbour))
        let neighbourConnected = planner.connected(neighbour, incoming: false, now: at(1))
        #expect(neighbourConnected)
        planner.add([own], source: .tracker, now: at(2))
        #expect(planner.dialsDue(now: at(1000)).isEmpty, "never dialled again")
        let incoming = planner.connected(PeerAddress("127.0.0.1:40000")!, incoming: true, now: at(3))
        #expect(incoming, "the host may still connect")
    }

    @Test func refusesDuplicatesBannedAndFullTorrents() {
        var planner = ConnectionPlanner(limits: .init(maxConnections: 2))
        let peers = addresses(3)
        do {
            let accepted = planner.connected(peers[0], incoming: true, now: at(0))
            #expect(accepted)
        }
        do {
            let accepted = planner.connected(peers[0], incoming: true, now: at(0))
            #expect(!accepted, "already connected")
        }
        planner.ban(peers[1])
        do {
            let accepted = planner.connected(peers[1], incoming: true, now: at(0))
            #expect(!accepted)
        }
        #expect(planner.isBanned(peers[1]))
        planner.add([peers[1]], source: .pex, now: at(0))
        #expect(planner.dialsDue(now: at(0)).isEmpty, "a banned peer is never dialled")
        do {
            let accepted = planner.connected(peers[2], incoming: true, now: at(0))
            #expect(accepted)
        }
        do {
            let accepted = planner.connected(PeerAddress("10.0.0.9:1")!, incoming: true, now: at(0))
            #expect(!accepted, "full")
        }
    }

    @Test func retriesAPeerThatLeftAndCountsMisbehaviour() {
        var planner = ConnectionPlanner(limits: .init(baseRetry: .seconds(5), maxFailures: 2))
        let peer = addresses(1)[0]
        do {
            let accepted = planner.connected(peer, incoming: true, now: at(0))
            #expect(accepted)
        }
        planner.disconnected(peer, misbehaved: false, now: at(10))
        #expect(planner.dialsDue(now: at(14)).isEmpty)
        #expect(planner.dialsDue(now: at(15)) == [peer])
        do {
            let accepted = planner.connected(peer, incoming: false, now: at(16))
            #expect(accepted)
        }
        planner.disconnected(peer, misbehaved: true, now: at(20))
        #expect(planner.knownPeers == 1)
        #expect(planner.dialsDue(now: at(29)).isEmpty, "a strike doubles the wait")
        #expect(planner.dialsDue(now: at(30)) == [peer])
        do {
            let accepted = planner.connected(peer, incoming: false, now: at(31))
            #expect(accepted)
        }
        planner.disconnected(peer, misbehaved: true, now: at(32))
        #expect(planner.isBanned(peer), "banned at the second strike")
        #expect(planner.dialsDue(now: at(10_000)).isEmpty)
    }

    @Test func boundsTheCandidateList() {
        var planner = ConnectionPlanner(limits: .init(maxCandidates: 5))
        planner.add(addresses(20), source: .dht, now: at(0))
        #expect(planner.knownPeers == 5)
    }

    @Test func noDialTimeWhileTheLimitsLeaveNoRoom() {
        var planner = ConnectionPlanner(limits: .init(maxConnections: 2, maxHalfOpen: 1))
        let peers = addresses(4)
        planner.add(peers, source: .tracker, now: at(0))
        #expect(planner.nextDialTime == at(0))
        #expect(planner.dialsDue(now: at(0)) == [peers[0]])
        #expect(planner.nextDialTime == nil, "the one half-open slot is taken")
        _ = planner.connected(peers[0], incoming: false, now: at(1))
        #expect(planner.nextDialTime == at(0), "the others are due, and there is room for one more")
        let accepted = planner.connected(peers[3], incoming: true, now: at(2))
        #expect(accepted)
        #expect(planner.nextDialTime == nil, "full: two connected")
        #expect(planner.nextWakeup == at(0), "still waiting to be dialled")
        planner.disconnected(peers[3], misbehaved: false, now: at(3))
        #expect(planner.nextDialTime == at(0))
    }
}
