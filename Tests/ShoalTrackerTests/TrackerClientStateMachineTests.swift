import ShoalBencode
import ShoalCore
import Testing

@testable import ShoalTracker

/// The announce state machine in virtual time: tiers, back-off, intervals, events.
@Suite("Tracker client state machine")
struct TrackerClientStateMachineTests {
    typealias Machine = TrackerClient.StateMachine
    typealias Action = TrackerClient.Action

    static func configuration(allTiers: Bool = true, seed: UInt64 = 1) -> TrackerClient.Configuration {
        TrackerClient.Configuration(
            infoHash: TrackerFixtures.infoHash, peerID: TrackerFixtures.peerID, port: 6881, key: 0x1234,
            announceToAllTiers: allTiers, seed: seed)
    }

    static let leeching = TrackerClient.Totals(uploaded: 1, downloaded: 2, left: 1000)
    static let seeding = TrackerClient.Totals(uploaded: 1, downloaded: 1000, left: 0)

    /// The HTTP requests among `actions`: (id, tracker URL host, event).
    static func requests(_ actions: [Action]) -> [(id: TrackerClient.RequestID, host: String, event: String)] {
        actions.compactMap {
            guard case .sendHTTP(let id, _, let url) = $0 else { return nil }
            let host = url.split(separator: "/")[1]
            let event = url.split(separator: "&").first { $0.hasPrefix("event=") }.map { String($0.dropFirst(6)) } ?? "none"
            return (id, String(host), event)
        }
    }

    static func ok(interval: Int64 = 1800, minInterval: Int64? = nil, peers: [PeerAddress] = [], trackerID: String? = nil, warning: String? = nil) -> [UInt8] {
        AnnounceResponse(
            interval: interval, minInterval: minInterval, trackerID: trackerID.map { Array($0.utf8) }, seeders: 1,
            leechers: 2, peers: peers, warning: warning
        ).http
    }

    static func reports(_ actions: [Action]) -> [TrackerClient.Report] {
        actions.compactMap { if case .report(let report) = $0 { report } else { nil } }
    }

    @Test func startAnnouncesStartedToOneTrackerOfEveryTier() {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce", "http://b/announce"], ["http://c/announce"], ["bogus://x"]])
        #expect(machine.invalidURLs == ["bogus://x"])
        let sent = Self.requests(machine.start(now: .zero, totals: Self.leeching))
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { $0.event == "started" })
        #expect(Set(sent.map(\.host)).count == 2 && sent.contains { $0.host == "c" })
        #expect(machine.start(now: .zero, totals: Self.leeching).isEmpty, "a second start does nothing")
    }

    @Test func failsOverWithinTheTierAndPromotesTheTrackerThatAnswers() throws {
        var machine = Machine(configuration: Self.configuration(seed: 9), tiers: [["http://a/announce", "http://b/announce", "http://c/announce"]])
        let order = machine.tierOrder[0].map(\.host)
        let first = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        #expect(first.host == order[0])
        let failure = machine.httpFailed(first.id, reason: "connection refused", now: .seconds(1), totals: Self.leeching)
        #expect(Self.reports(failure) == [.failed(machine.urls.first { $0.host == order[0] }!, reason: "connection refused", retryAt: nil)])
        let second = try #require(Self.requests(failure).first)
        #expect(second.host == order[1] && second.event == "started")
        let peers = [PeerAddress("10.0.0.1:1")!]
        let success = machine.httpResponse(second.id, body: Self.ok(interval: 600, peers: peers), now: .seconds(2), totals: Self.leeching)
        #expect(success.contains(.peers(peers, tracker: machine.urls.firstIndex { $0.host == order[1] }!)))
        #expect(machine.tierOrder[0].map(\.host) == [order[1], order[0], order[2]], "BEP 12: the answering tracker moves to the front")
        #expect(machine.nextDeadline == .seconds(602))
        // The next regular announce goes to the promoted tracker, without an event.
        let next = Self.requests(machine.timerFired(now: .seconds(602), totals: Self.leeching))
        #expect(next.map(\.host) == [order[1]] && next.map(\.event) == ["none"])
        // A tracker that never heard `started` hears it when it is next used.
        let fail = machine.httpFailed(next[0].id, reason: "down", now: .seconds(603), totals: Self.leeching)
        #expect(Self.requests(fail).map(\.event) == ["started"])
    }

    @Test func aRoundOfFailuresBacksOffExponentiallyToItsLimit() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        var request = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        var now = Instant.zero
        var waits: [Double] = []
        for _ in 0..<9 {
            _ = machine.httpFailed(request.id, reason: "down", now: now, totals: Self.leeching)
            let due = try #require(machine.nextDeadline)
            waits.append((due - now).seconds)
            now = due
            request = try #require(Self.requests(machine.timerFired(now: now, totals: Self.leeching)).first)
            #expect(request.event == "started")
        }
        #expect(waits == [30, 60, 120, 240, 480, 960, 1800, 1800, 1800])
        // Success resets the back-off.
        _ = machine.httpResponse(request.id, body: Self.ok(interval: 100), now: now, totals: Self.leeching)
        #expect(machine.nextDeadline == now + .seconds(100))
    }

    @Test func intervalsAreKeptWithinBounds() throws {
        for (given, expected) in [(Int64(1), 5.0), (1_000_000, 86_400), (300, 300)] {
            var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
            let request = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
            _ = machine.httpResponse(request.id, body: Self.ok(interval: given), now: .zero, totals: Self.leeching)
            #expect(machine.nextDeadline.map { $0.nanoseconds / 1_000_000_000 } == Int64(expected))
        }
        // No interval at all: the default, 30 minutes.
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        let request = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        _ = machine.httpResponse(request.id, body: BencodeValue.dictionary(["peers": BencodeValue.string([])]).encoded, now: .zero, totals: Self.leeching)
        #expect(machine.nextDeadline == .seconds(1800))
    }

    @Test func askingForPeersHonoursMinInterval() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        let request = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        _ = machine.httpResponse(request.id, body: Self.ok(interval: 1800, minInterval: 120), now: .seconds(10), totals: Self.leeching)
        #expect(Self.requests(machine.requestPeers(now: .seconds(20), totals: Self.leeching)).isEmpty)
        #expect(machine.nextDeadline == .seconds(130), "not before min interval")
        #expect(Self.requests(machine.timerFired(now: .seconds(130), totals: Self.leeching)).count == 1)
    }

    @Test func keepsTheTrackerIDAndReportsWarnings() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        let request = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        let actions = machine.httpResponse(request.id, body: Self.ok(interval: 60, trackerID: "T-1", warning: "old client"), now: .zero, totals: Self.leeching)
        #expect(Self.reports(actions).contains(.warning(machine.urls[0], "old client")))
        let next = machine.timerFired(now: .seconds(60), totals: Self.leeching)
        guard case .sendHTTP(_, _, let url) = next.first else {
            Issue.record("no announce")
            return
        }
        #expect(url.hasSuffix("&trackerid=T-1"))
    }

    @Test func aRefusalIsReportedAndItsRetryInHonoured() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        let request = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        let refusal = BencodeValue.dictionary(["failure reason": BencodeValue.text("torrent not registered"), "retry in": .integer(10)]).encoded
        let reports = Self.reports(machine.httpResponse(request.id, body: refusal, now: .zero, totals: Self.leeching))
        guard case .failed(_, let reason, let retryAt) = reports.first else {
            Issue.record("no failure reported: \(reports)")
            return
        }
        #expect(reason.contains("torrent not registered"))
        #expect(retryAt == .seconds(600), "retry in 10 minutes, longer than the back-off")
    }

    @Test func completedIsToldOnceToTrackersThatSawALeecher() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"], ["http://b/announce"]])
        let started = Self.requests(machine.start(now: .zero, totals: Self.leeching))
        let a = try #require(started.first { $0.host == "a" })
        let b = try #require(started.first { $0.host == "b" })
        _ = machine.httpResponse(a.id, body: Self.ok(), now: .seconds(1), totals: Self.leeching)
        // b's started is still in flight when the download completes.
        let completed = Self.requests(machine.completed(now: .seconds(2), totals: Self.seeding))
        #expect(completed.map(\.host) == ["a"] && completed.map(\.event) == ["completed"])
        // b answers its started (sent while leeching): it hears completed at once.
        let afterB = Self.requests(machine.httpResponse(b.id, body: Self.ok(), now: .seconds(3), totals: Self.seeding))
        #expect(afterB.map(\.host) == ["b"] && afterB.map(\.event) == ["completed"])
        _ = machine.httpResponse(completed[0].id, body: Self.ok(interval: 100), now: .seconds(4), totals: Self.seeding)
        _ = machine.httpResponse(afterB[0].id, body: Self.ok(interval: 100), now: .seconds(4), totals: Self.seeding)
        let regular = Self.requests(machine.timerFired(now: .seconds(104), totals: Self.seeding))
        #expect(regular.map(\.event) == ["none", "none"])
        #expect(machine.completed(now: .seconds(105), totals: Self.seeding).isEmpty)
    }

    @Test func aSeedFromTheStartNeverSaysCompleted() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        let started = try #require(Self.requests(machine.start(now: .zero, totals: Self.seeding)).first)
        #expect(started.event == "started")
        _ = machine.httpResponse(started.id, body: Self.ok(interval: 60), now: .zero, totals: Self.seeding)
        #expect(Self.requests(machine.timerFired(now: .seconds(60), totals: Self.seeding)).map(\.event) == ["none"])
    }

    @Test func stopTellsEveryTrackerThatHeardStartedAndEndsWhenAllAnswered() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"], ["http://b/announce"], ["http://c/announce"]])
        let started = Self.requests(machine.start(now: .zero, totals: Self.leeching))
        for request in started where request.host != "c" {
            _ = machine.httpResponse(request.id, body: Self.ok(), now: .seconds(1), totals: Self.leeching)
        }
        // c never answered: it is not told.
        let stop = machine.stop(now: .seconds(2), totals: Self.leeching)
        let stopped = Self.requests(stop)
        #expect(Set(stopped.map(\.host)) == ["a", "b"] && stopped.allSatisfy { $0.event == "stopped" })
        #expect(stop.allSatisfy { if case .sendHTTP(_, _, let url) = $0 { url.contains("numwant=0") } else { true } })
        #expect(!machine.isStopped)
        #expect(machine.httpResponse(started.first { $0.host == "c" }!.id, body: Self.ok(), now: .seconds(2), totals: Self.leeching).isEmpty,
            "a late answer to an abandoned request is ignored")
        _ = machine.httpResponse(stopped[0].id, body: Self.ok(), now: .seconds(3), totals: Self.leeching)
        let last = machine.httpFailed(stopped[1].id, reason: "timeout", now: .seconds(3), totals: Self.leeching)
        #expect(Self.reports(last).last == .stopped && machine.isStopped)
        #expect(machine.timerFired(now: .seconds(9999), totals: Self.leeching).isEmpty)
    }

    @Test func stopIsBoundedInTime() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        let started = try #require(Self.requests(machine.start(now: .zero, totals: Self.leeching)).first)
        _ = machine.httpResponse(started.id, body: Self.ok(), now: .zero, totals: Self.leeching)
        _ = machine.stop(now: .seconds(10), totals: Self.leeching)
        #expect(machine.nextDeadline == .seconds(15))
        #expect(Self.reports(machine.timerFired(now: .seconds(15), totals: Self.leeching)) == [.stopped])
        // Stopping before anything answered ends at once.
        var fresh = Machine(configuration: Self.configuration(), tiers: [["http://a/announce"]])
        _ = fresh.start(now: .zero, totals: Self.leeching)
        #expect(Self.reports(fresh.stop(now: .zero, totals: Self.leeching)) == [.stopped])
    }

    @Test func strictBEP12OrderTriesALaterTierOnlyWhenEarlierOnesFail() throws {
        var machine = Machine(configuration: Self.configuration(allTiers: false), tiers: [["http://a/announce"], ["http://b/announce"]])
        let first = Self.requests(machine.start(now: .zero, totals: Self.leeching))
        #expect(first.map(\.host) == ["a"])
        let second = Self.requests(machine.httpFailed(first[0].id, reason: "down", now: .zero, totals: Self.leeching))
        #expect(second.map(\.host) == ["b"])
        _ = machine.httpResponse(second[0].id, body: Self.ok(interval: 60), now: .zero, totals: Self.leeching)
        // The next announce starts again with the first tier (BEP 12: "on each announce, first try tracker1").
        #expect(Self.requests(machine.timerFired(now: .seconds(60), totals: Self.leeching)).map(\.host) == ["a"])
    }

    // MARK: - UDP

    /// The datagrams among `actions`, decoded.
    static func datagrams(_ actions: [Action]) -> [(tracker: Int, request: UDPTrackerRequest)] {
        actions.compactMap {
            guard case .sendUDP(let tracker, _, _, let bytes) = $0, let request = try? UDPTrackerRequest(decoding: bytes) else { return nil }
            return (tracker, request)
        }
    }

    @Test func announcesOverUDPWithAConnectFirst() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["udp://127.0.0.1:6969/announce"]])
        let start = machine.start(now: .zero, totals: Self.leeching)
        guard case .sendUDP(0, "127.0.0.1", 6969, _) = start.first else {
            Issue.record("no datagram to the tracker: \(start)")
            return
        }
        let connect = try #require(Self.datagrams(start).first).request
        let reply = UDPTrackerResponse.connect(transactionID: connect.transactionID, connectionID: 42).encoded
        let announce = try #require(Self.datagrams(machine.udpReceived(tracker: 0, datagram: reply, ipv6: false, now: .seconds(1), totals: Self.leeching)).first).request
        guard case .announce(42, let transaction, let fields) = announce else {
            Issue.record("expected an announce, got \(announce)")
            return
        }
        #expect(fields.event == .started && fields.left == 1000 && fields.key == 0x1234 && fields.numWant == 50 && fields.port == 6881)
        let peers = [PeerAddress("10.0.0.9:51413")!]
        let answer = UDPTrackerResponse.announce(transactionID: transaction, interval: 120, leechers: 3, seeders: 4, peers: peers).encoded
        let actions = machine.udpReceived(tracker: 0, datagram: answer, ipv6: false, now: .seconds(2), totals: Self.leeching)
        #expect(actions.contains(.peers(peers, tracker: 0)))
        #expect(Self.reports(actions) == [.announced(machine.urls[0], event: .started, peers: 1, seeders: 4, leechers: 3, interval: .seconds(120))])
        #expect(machine.nextDeadline == .seconds(122))
    }

    @Test func aLoneUDPTrackerIsRetriedAsBEP15SaysAndAnotherInTheTierTakesOver() throws {
        var lone = Machine(configuration: Self.configuration(), tiers: [["udp://a:1"]])
        _ = lone.start(now: .zero, totals: Self.leeching)
        var times: [Double] = []
        for _ in 0..<5 {
            let deadline = try #require(lone.nextDeadline)
            #expect(Self.datagrams(lone.timerFired(now: deadline, totals: Self.leeching)).count == 1)
            times.append(Double(deadline.nanoseconds) / 1e9)
        }
        #expect(times == [15, 45, 105, 225, 465])

        var pair = Machine(configuration: Self.configuration(seed: 3), tiers: [["udp://a:1", "udp://b:1"]])
        let first = try #require(Self.datagrams(pair.start(now: .zero, totals: Self.leeching)).first)
        _ = pair.timerFired(now: .seconds(15), totals: Self.leeching)
        // The second timeout (at 45 s) gives up on it for this round: the other tracker is tried.
        let failover = pair.timerFired(now: .seconds(45), totals: Self.leeching)
        let next = try #require(Self.datagrams(failover).first)
        #expect(next.tracker != first.tracker)
        guard case .failed(_, _, nil) = Self.reports(failover).first else {
            Issue.record("the failover was not reported")
            return
        }
        // A late answer from the first one is ignored.
        let late = UDPTrackerResponse.connect(transactionID: first.request.transactionID, connectionID: 1).encoded
        #expect(pair.udpReceived(tracker: first.tracker, datagram: late, ipv6: false, now: .seconds(46), totals: Self.leeching).isEmpty)
    }

    @Test func anUnresolvableUDPTrackerFails() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["udp://nowhere.invalid:1"]])
        _ = machine.start(now: .zero, totals: Self.leeching)
        let actions = machine.udpFailed(tracker: 0, reason: "cannot resolve", now: .zero, totals: Self.leeching)
        #expect(Self.reports(actions) == [.failed(machine.urls[0], reason: "cannot resolve", retryAt: .seconds(30))])
    }

    @Test func udpStopIsOneAttempt() throws {
        var machine = Machine(configuration: Self.configuration(), tiers: [["udp://a:1"]])
        let connect = try #require(Self.datagrams(machine.start(now: .zero, totals: Self.leeching)).first).request
        let announce = try #require(Self.datagrams(machine.udpReceived(
            tracker: 0, datagram: UDPTrackerResponse.connect(transactionID: connect.transactionID, connectionID: 5).encoded, ipv6: false,
            now: .zero, totals: Self.leeching)).first).request
        _ = machine.udpReceived(
            tracker: 0, datagram: UDPTrackerResponse.announce(transactionID: announce.transactionID, interval: 60, leechers: 0, seeders: 0, peers: []).encoded,
            ipv6: false, now: .zero, totals: Self.leeching)
        let stop = try #require(Self.datagrams(machine.stop(now: .seconds(1), totals: Self.leeching)).first).request
        guard case .announce(5, _, let fields) = stop else {
            Issue.record("expected a stopped announce on the live connection, got \(stop)")
            return
        }
        #expect(fields.event == .stopped && fields.numWant == 0)
        // No answer within the stop's bound (5 s, shorter than BEP 15's first 15 s): stopped anyway.
        #expect(Self.reports(machine.timerFired(now: .seconds(6), totals: Self.leeching)) == [.stopped])
    }
}
