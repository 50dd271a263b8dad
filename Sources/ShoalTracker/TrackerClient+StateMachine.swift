import ShoalCore

extension TrackerClient {
    /// Announces one torrent to its trackers (BEP 3, 12, 15) as a pure core: events in (start, timer,
    /// an HTTP body, a datagram, completion, stop), actions out (send, peers found, reports). Time comes in
    /// as `now`; nothing here reads a clock or touches a socket.
    ///
    /// - Tiers (BEP 12): each tier is shuffled once; a tracker that answers moves to the front of its
    ///   tier. With `announceToAllTiers` every tier is a lane of its own (one tracker of each tier is
    ///   announced to); without it, one lane runs through the tiers in order and stops at the first
    ///   tracker that answers.
    /// - A lane announces to its current tracker; when that fails, the next tracker of the round is tried at
    ///   once; when the whole round failed, the lane waits `retryBase`·2^(rounds−1) (at most `retryMax`, at
    ///   least a `retry in` the tracker gave) and starts again at the front.
    /// - Events: a tracker hears `started` until it has answered one, `completed` once if it saw us as a
    ///   leecher, and `stopped` at the end if it ever answered `started`. The next regular announce is due
    ///   after the tracker's `interval` (kept within the configured bounds); `requestPeers` re-announces
    ///   early, but never before `min interval`.
    /// - UDP (BEP 15) runs through a ``UDPTrackerExchange`` per tracker: connection ids, 15·2ⁿ retransmissions.
    /// - `tracker id` is kept per tracker and sent back.
    public struct StateMachine: Sendable {
        struct Tracker: Sendable {
            let url: TrackerURL
            var trackerID: [UInt8]?
            var interval: Interval?
            var minInterval: Interval?
            var lastSuccess: Instant?
            var startedSent = false
            var announcedAsLeecher = false
            var completedSent = false
            var failures = 0
            var udp: UDPTrackerExchange
            /// The announce in flight: its event, and for HTTP its request.
            var inFlight: (event: AnnounceEvent, left: Int64, request: RequestID?)?
            var seeders: Int64?
            var leechers: Int64?
            var lastError: String?
        }

        /// A sequence of tiers announced as one: one tracker at a time, the first that answers wins.
        struct Lane: Sendable {
            var tiers: [[Int]]
            /// The tracker being tried in this round (tier, index in tier); nil when idle.
            var position: (tier: Int, index: Int)?
            /// When the next round starts (nil: not scheduled, e.g. stopped).
            var nextAnnounce: Instant?
            var failedRounds = 0
            var trackerCount: Int { tiers.reduce(0) { $0 + $1.count } }
        }

        public let configuration: Configuration
        private var trackers: [Tracker] = []
        private var lanes: [Lane] = []
        private var random: SplitMix64
        private var nextRequest = 0
        private var started = false
        private var complete = false
        private var stopping = false
        private var stopDeadline: Instant?
        public private(set) var isStopped = false

        /// `tiers` of announce URLs (BEP 12, from `announce-list` or `announce`, plus any given by the
        /// user); URLs that cannot be announced to are left out (see ``invalidURLs``), and a URL given
        /// twice is kept once.
        public init(configuration: Configuration, tiers: [[String]]) {
            self.configuration = configuration
            random = SplitMix64(seed: configuration.seed)
            var seen: Set<TrackerURL> = []
            var parsedTiers: [[Int]] = []
            for tier in tiers {
                var indices: [Int] = []
                for text in tier {
                    guard let url = try? TrackerURL(parsing: text) else {
                        invalidURLs.append(text)
                        continue
                    }
                    guard seen.insert(url).inserted else { continue }
                    indices.append(trackers.count)
                    trackers.append(Tracker(url: url, udp: UDPTrackerExchange(configuration: configuration.udp)))
                }
                guard !indices.isEmpty else { continue }
                indices.shuffle(using: &random)
                parsedTiers.append(indices)
            }
            if configuration.announceToAllTiers {
                lanes = parsedTiers.map { Lane(tiers: [$0]) }
            } else if !parsedTiers.isEmpty {
                lanes = [Lane(tiers: parsedTiers)]
            }
        }

        /// Announce URLs that could not be parsed, as given.
        public private(set) var invalidURLs: [String] = []

        /// The trackers, in the order their indices (`tracker:` in actions) count.
        public var urls: [TrackerURL] { trackers.map(\.url) }

        /// The tiers as they are now ordered (shuffled, answering trackers in front).
        public var tierOrder: [[TrackerURL]] {
            lanes.flatMap { $0.tiers.map { $0.map { trackers[$0].url } } }
        }

        /// The earliest time `timerFired` has something to do.
        public var nextDeadline: Instant? {
            var earliest: Instant?
            func consider(_ instant: Instant?) {
                guard let instant else { return }
                if earliest.map({ instant < $0 }) ?? true { earliest = instant }
            }
            if stopping {
                if !isStopped { consider(stopDeadline) }
            } else {
                for lane in lanes where lane.position == nil { consider(lane.nextAnnounce) }
            }
            for tracker in trackers where tracker.inFlight != nil { consider(tracker.udp.deadline) }
            return earliest
        }

        // MARK: - Events from the torrent

        /// The torrent starts: every lane announces `started` now.
        public mutating func start(now: Instant, totals: Totals) -> [Action] {
            guard !started, !stopping else { return [] }
            started = true
            complete = totals.left == 0
            for index in lanes.indices { lanes[index].nextAnnounce = now }
            return timerFired(now: now, totals: totals)
        }

        /// The download completed: trackers that saw us as a leecher hear `completed` now.
        public mutating func completed(now: Instant, totals: Totals) -> [Action] {
            guard !complete else { return [] }
            complete = true
            guard started, !stopping else { return [] }
            // Lanes backing off after failures keep their wait.
            for index in lanes.indices where lanes[index].position == nil && lanes[index].failedRounds == 0 {
                lanes[index].nextAnnounce = now
            }
            return timerFired(now: now, totals: totals)
        }

        /// We want more peers: re-announce every idle lane as soon as its tracker's `min interval` allows
        /// (30 s after the last answer when the tracker gave none).
        public mutating func requestPeers(now: Instant, totals: Totals) -> [Action] {
            guard started, !stopping else { return [] }
            for index in lanes.indices where lanes[index].position == nil && lanes[index].failedRounds == 0 {
                guard let front = lanes[index].tiers.first?.first else { continue }
                let tracker = trackers[front]
                let earliest = tracker.lastSuccess.map { $0 + (tracker.minInterval ?? .seconds(30)) } ?? now
                let due = max(now, earliest)
                if lanes[index].nextAnnounce.map({ due < $0 }) ?? true { lanes[index].nextAnnounce = due }
            }
            return timerFired(now: now, totals: totals)
        }

        /// The torrent stops: requests in flight are abandoned and every tracker that heard `started` hears
        /// `stopped`. Reports ``Report/stopped`` once all have answered, failed, or `stopTimeout` passed.
        public mutating func stop(now: Instant, totals: Totals) -> [Action] {
            guard !stopping else { return [] }
            stopping = true
            stopDeadline = now + configuration.stopTimeout
            for index in lanes.indices {
                lanes[index].position = nil
                lanes[index].nextAnnounce = nil
            }
            var actions: [Action] = []
            for index in trackers.indices {
                trackers[index].inFlight = nil
                trackers[index].udp.cancel()
                if trackers[index].startedSent { send(.stopped, to: index, now: now, totals: totals, into: &actions) }
            }
            finishStopIfDone(into: &actions)
            return actions
        }

        /// Time passed: due announces go out, lost UDP packets are sent again, a stop that waited long
        /// enough ends.
        public mutating func timerFired(now: Instant, totals: Totals) -> [Action] {
            var actions: [Action] = []
            for index in trackers.indices {
                guard trackers[index].inFlight != nil, let deadline = trackers[index].udp.deadline, deadline <= now else { continue }
                udpTimedOut(index, now: now, totals: totals, into: &actions)
            }
            if stopping {
                if !isStopped, let stopDeadline, now >= stopDeadline {
                    for index in trackers.indices {
                        trackers[index].inFlight = nil
                        trackers[index].udp.cancel()
                    }
                    finishStopIfDone(into: &actions)
                }
                return actions
            }
            guard started else { return actions }
            for index in lanes.indices {
                guard lanes[index].position == nil, let due = lanes[index].nextAnnounce, due <= now else { continue }
                lanes[index].position = (0, 0)
                lanes[index].nextAnnounce = nil
                attempt(lane: index, now: now, totals: totals, into: &actions)
            }
            return actions
        }

        // MARK: - Answers from the network

        /// The body of an HTTP answer (status 200; other statuses are failures).
        public mutating func httpResponse(_ request: RequestID, body: [UInt8], now: Instant, totals: Totals) -> [Action] {
            guard let index = trackers.firstIndex(where: { $0.inFlight?.request == request }) else { return [] }
            var actions: [Action] = []
            do {
                let response = try AnnounceResponse(http: body)
                succeeded(index, response, now: now, totals: totals, into: &actions)
            } catch {
                failed(index, error.description, retryIn: Self.retryIn(error), now: now, totals: totals, into: &actions)
            }
            return actions
        }

        /// An HTTP request failed: no connection, a timeout, a status other than 200.
        public mutating func httpFailed(_ request: RequestID, reason: String, now: Instant, totals: Totals) -> [Action] {
            guard let index = trackers.firstIndex(where: { $0.inFlight?.request == request }) else { return [] }
            var actions: [Action] = []
            failed(index, reason, retryIn: nil, now: now, totals: totals, into: &actions)
            return actions
        }

        /// A datagram from a UDP tracker's address. `ipv6`: it came over IPv6.
        public mutating func udpReceived(
            tracker index: Int, datagram: [UInt8], ipv6: Bool, now: Instant, totals: Totals
        ) -> [Action] {
            guard trackers.indices.contains(index), trackers[index].inFlight != nil else { return [] }
            var actions: [Action] = []
            switch trackers[index].udp.received(datagram, ipv6: ipv6, now: now, random: &random) {
            case .send(let datagram):
                actions.append(sendUDP(index, datagram))
            case .announced(let response):
                succeeded(index, response, now: now, totals: totals, into: &actions)
            case .refused(let error):
                failed(index, error.description, retryIn: nil, now: now, totals: totals, into: &actions)
            case .scraped, .ignored:
                break
            }
            return actions
        }

        /// A UDP tracker's host could not be resolved, or a datagram could not be sent to it.
        public mutating func udpFailed(tracker index: Int, reason: String, now: Instant, totals: Totals) -> [Action] {
            guard trackers.indices.contains(index), trackers[index].inFlight != nil else { return [] }
            trackers[index].udp.cancel()
            var actions: [Action] = []
            failed(index, reason, retryIn: nil, now: now, totals: totals, into: &actions)
            return actions
        }

        // MARK: - Announcing

        /// Announces to the lane's current tracker.
        private mutating func attempt(lane: Int, now: Instant, totals: Totals, into actions: inout [Action]) {
            guard let position = lanes[lane].position else { return }
            let index = lanes[lane].tiers[position.tier][position.index]
            send(event(for: index), to: index, now: now, totals: totals, into: &actions)
        }

        private func event(for index: Int) -> AnnounceEvent {
            let tracker = trackers[index]
            if !tracker.startedSent { return .started }
            if complete && tracker.announcedAsLeecher && !tracker.completedSent { return .completed }
            return .none
        }

        private mutating func send(
            _ event: AnnounceEvent, to index: Int, now: Instant, totals: Totals, into actions: inout [Action]
        ) {
            let request = AnnounceRequest(
                infoHash: configuration.infoHash, peerID: configuration.peerID, port: configuration.port,
                uploaded: totals.uploaded, downloaded: totals.downloaded, left: max(totals.left, 0), event: event,
                key: configuration.key, numWant: event == .stopped ? 0 : configuration.numWant,
                trackerID: trackers[index].trackerID)
            let url = trackers[index].url
            switch url.scheme {
            case .http, .https:
                nextRequest += 1
                let id = RequestID(value: nextRequest)
                trackers[index].inFlight = (event, request.left, id)
                actions.append(.sendHTTP(id, tracker: index, url: request.httpURL(url)))
            case .udp:
                trackers[index].inFlight = (event, request.left, nil)
                if case .send(let datagram) = trackers[index].udp.begin(.announce(request), now: now, random: &random) {
                    actions.append(sendUDP(index, datagram))
                }
            }
        }

        private func sendUDP(_ index: Int, _ datagram: [UInt8]) -> Action {
            let url = trackers[index].url
            return .sendUDP(tracker: index, host: url.host, port: url.port, datagram: datagram)
        }

        private mutating func udpTimedOut(_ index: Int, now: Instant, totals: Totals, into actions: inout [Action]) {
            let url = trackers[index].url
            if stopping {
                // A stop is one attempt: no retransmission.
                trackers[index].inFlight = nil
                trackers[index].udp.cancel()
                finishStopIfDone(into: &actions)
                return
            }
            guard case .send(let datagram) = trackers[index].udp.timedOut(now: now, random: &random) else { return }
            let timeouts = trackers[index].udp.timeouts
            let lane = lanes.firstIndex { $0.tiers.contains { $0.contains(index) } }
            let canFailOver = lane.map { lanes[$0].trackerCount > 1 } ?? false
            if canFailOver && timeouts >= configuration.udpTimeoutsBeforeFailover {
                trackers[index].udp.cancel()
                failed(index, "no answer to \(timeouts + 1) packets", retryIn: nil, now: now, totals: totals, into: &actions)
                return
            }
            actions.append(sendUDP(index, datagram))
            if timeouts >= configuration.udpTimeoutsBeforeFailover {
                let reason = "no answer to \(timeouts) packets; sending again, next wait \(trackers[index].udp.currentTimeout.seconds) s"
                trackers[index].lastError = reason
                actions.append(.report(.failed(url, reason: reason, retryAt: nil)))
            }
        }

        private mutating func succeeded(
            _ index: Int, _ response: AnnounceResponse, now: Instant, totals: Totals, into actions: inout [Action]
        ) {
            guard let inFlight = trackers[index].inFlight else { return }
            trackers[index].inFlight = nil
            trackers[index].failures = 0
            trackers[index].lastError = nil
            trackers[index].lastSuccess = now
            if let id = response.trackerID { trackers[index].trackerID = id }
            let interval = Interval.seconds(response.interval ?? Int64(configuration.defaultInterval.seconds))
            let bounded = min(max(interval, configuration.minimumInterval), configuration.maximumInterval)
            trackers[index].interval = bounded
            trackers[index].minInterval = response.minInterval.map { min(Interval.seconds($0), bounded) }
            if let seeders = response.seeders { trackers[index].seeders = seeders }
            if let leechers = response.leechers { trackers[index].leechers = leechers }
            let url = trackers[index].url
            if stopping {
                finishStopIfDone(into: &actions)
                return
            }
            switch inFlight.event {
            case .started:
                trackers[index].startedSent = true
            case .completed:
                trackers[index].completedSent = true
            case .none, .stopped:
                break
            }
            if inFlight.left > 0 { trackers[index].announcedAsLeecher = true }
            actions.append(
                .report(
                    .announced(
                        url, event: inFlight.event, peers: response.peers.count, seeders: response.seeders,
                        leechers: response.leechers, interval: bounded)))
            if let warning = response.warning { actions.append(.report(.warning(url, warning))) }
            if !response.peers.isEmpty { actions.append(.peers(response.peers, tracker: index)) }
            guard let lane = laneIndex(of: index) else { return }
            promote(index, in: lane)
            lanes[lane].position = nil
            lanes[lane].failedRounds = 0
            // A completion that happened while this announce was in flight is told at once.
            lanes[lane].nextAnnounce = event(for: index) == .completed ? now : now + bounded
            if lanes[lane].nextAnnounce == now { attemptDue(lane: lane, now: now, totals: totals, into: &actions) }
        }

        private mutating func attemptDue(lane: Int, now: Instant, totals: Totals, into actions: inout [Action]) {
            lanes[lane].position = (0, 0)
            lanes[lane].nextAnnounce = nil
            attempt(lane: lane, now: now, totals: totals, into: &actions)
        }

        private mutating func failed(
            _ index: Int, _ reason: String, retryIn: Interval?, now: Instant, totals: Totals, into actions: inout [Action]
        ) {
            trackers[index].inFlight = nil
            trackers[index].failures += 1
            trackers[index].lastError = reason
            let url = trackers[index].url
            if stopping {
                actions.append(.report(.failed(url, reason: reason, retryAt: nil)))
                finishStopIfDone(into: &actions)
                return
            }
            guard let lane = laneIndex(of: index), let position = lanes[lane].position else { return }
            // The next tracker of this round, if any: the rest of this tier, then the next tiers.
            var next = (tier: position.tier, index: position.index + 1)
            if next.index >= lanes[lane].tiers[next.tier].count { next = (position.tier + 1, 0) }
            if next.tier < lanes[lane].tiers.count {
                actions.append(.report(.failed(url, reason: reason, retryAt: nil)))
                lanes[lane].position = next
                attempt(lane: lane, now: now, totals: totals, into: &actions)
                return
            }
            lanes[lane].position = nil
            lanes[lane].failedRounds += 1
            let exponent = Int64(min(lanes[lane].failedRounds - 1, 30))
            var delay = min(configuration.retryBase * (Int64(1) << exponent), configuration.retryMax)
            if let retryIn { delay = max(delay, retryIn) }
            if let minInterval = trackers[index].minInterval { delay = max(delay, minInterval) }
            let retryAt = now + delay
            lanes[lane].nextAnnounce = retryAt
            actions.append(.report(.failed(url, reason: reason, retryAt: retryAt)))
        }

        /// BEP 12: a tracker that answered moves to the front of its tier.
        private mutating func promote(_ index: Int, in lane: Int) {
            for tier in lanes[lane].tiers.indices {
                guard let position = lanes[lane].tiers[tier].firstIndex(of: index) else { continue }
                lanes[lane].tiers[tier].remove(at: position)
                lanes[lane].tiers[tier].insert(index, at: 0)
                return
            }
        }

        private func laneIndex(of tracker: Int) -> Int? {
            lanes.firstIndex { $0.tiers.contains { $0.contains(tracker) } }
        }

        private mutating func finishStopIfDone(into actions: inout [Action]) {
            guard stopping, !isStopped, !trackers.contains(where: { $0.inFlight != nil }) else { return }
            isStopped = true
            actions.append(.report(.stopped))
        }

        /// BEP 31's `retry in` of a refusal, as an interval (`never`: a day, the most we ever wait).
        private static func retryIn(_ error: TrackerError) -> Interval? {
            guard case .refused(_, let minutes?) = error.code else { return nil }
            return minutes == .max ? .seconds(86_400) : .seconds(Saturating.multiply(minutes, 60))
        }

        // MARK: - Status

        /// One tracker's state, for display.
        public struct Status: Hashable, Sendable {
            public var url: TrackerURL
            public var seeders: Int64?
            public var leechers: Int64?
            public var lastError: String?
            public var working: Bool
        }

        public var status: [Status] {
            trackers.map {
                Status(url: $0.url, seeders: $0.seeders, leechers: $0.leechers, lastError: $0.lastError, working: $0.lastSuccess != nil && $0.failures == 0)
            }
        }
    }
}
