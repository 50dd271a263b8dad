import ShoalCore

/// One UDP tracker as a client sees it (BEP 15): the connection id and when it was obtained, the
/// request in flight and its retransmissions.
///
/// A request first needs a connection id (a connect exchange), usable for one minute after it arrived.
/// An unanswered packet is sent again after 15·2ⁿ seconds, n counting the retransmissions (up to 8,
/// 3840 s) and starting again at 0 once the tracker answers; a retransmission whose connection id has
/// expired becomes a connect. Answers must carry the transaction id of the packet they answer; others
/// are ignored.
public struct UDPTrackerExchange: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// BEP 15's 15 s: the first retransmission timeout.
        public var retransmitBase: Interval
        /// BEP 15's 8: n stops growing there (15·2⁸ = 3840 s).
        public var maxLevel: Int
        /// BEP 15: a client may use a connection id until one minute after it received it.
        public var connectionIDLifetime: Interval

        public init(retransmitBase: Interval = .seconds(15), maxLevel: Int = 8, connectionIDLifetime: Interval = .seconds(60)) {
            self.retransmitBase = retransmitBase
            self.maxLevel = maxLevel
            self.connectionIDLifetime = connectionIDLifetime
        }
    }

    public enum Request: Hashable, Sendable {
        case announce(AnnounceRequest)
        case scrape([Bytes20])
    }

    /// What the caller must do after an event.
    public enum Outcome: Hashable, Sendable {
        /// Send this datagram to the tracker; wait for an answer until ``UDPTrackerExchange/deadline``.
        case send([UInt8])
        case announced(AnnounceResponse)
        case scraped([ScrapeCounts])
        /// The tracker answered with an error packet (``TrackerError/Code/refused(_:retryIn:)``).
        case refused(TrackerError)
        /// Nothing to do (a packet for no request of ours, or nothing in flight).
        case ignored
    }

    enum Phase: Hashable, Sendable {
        case connecting
        case requesting
    }

    struct Pending: Hashable, Sendable {
        var request: Request
        var phase: Phase
        var transactionID: UInt32
        var deadline: Instant
    }

    public let configuration: Configuration
    private(set) var connectionID: UInt64?
    private(set) var connectedAt = Instant.zero
    /// n in 15·2ⁿ.
    private(set) var level = 0
    private(set) var pending: Pending?
    /// Retransmissions of the request in flight (for a caller that fails over to another tracker).
    public private(set) var timeouts = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// When the packet in flight is considered lost; nil when nothing is in flight.
    public var deadline: Instant? { pending?.deadline }
    public var isBusy: Bool { pending != nil }

    /// Sends `request`, after a connect when the connection id is missing or expired. Replaces any
    /// request in flight.
    public mutating func begin<Random: RandomNumberGenerator>(
        _ request: Request, now: Instant, random: inout Random
    ) -> Outcome {
        timeouts = 0
        let transactionID = UInt32(truncatingIfNeeded: random.next())
        pending = Pending(request: request, phase: .connecting, transactionID: transactionID, deadline: now)
        return transmit(now: now, random: &random)
    }

    /// Forgets the request in flight; a late answer to it is ignored.
    public mutating func cancel() {
        pending = nil
    }

    /// The packet in flight went unanswered until its deadline: sends it again (a connect when the
    /// connection id expired meanwhile) with the next timeout.
    public mutating func timedOut<Random: RandomNumberGenerator>(now: Instant, random: inout Random) -> Outcome {
        guard let pending, now >= pending.deadline else { return .ignored }
        level = min(level + 1, configuration.maxLevel)
        timeouts += 1
        return transmit(now: now, random: &random)
    }

    /// A datagram from the tracker. `ipv6`: it came over IPv6 (announce peers are 18 bytes each).
    public mutating func received<Random: RandomNumberGenerator>(
        _ datagram: [UInt8], ipv6: Bool, now: Instant, random: inout Random
    ) -> Outcome {
        guard let current = pending, let response = try? UDPTrackerResponse(decoding: datagram, ipv6: ipv6),
            response.transactionID == current.transactionID
        else { return .ignored }
        switch (current.phase, response, current.request) {
        case (_, .error(_, let message), _):
            pending = nil
            level = 0
            return .refused(TrackerError(.refused(message, retryIn: nil)))
        case (.connecting, .connect(_, let connectionID), _):
            self.connectionID = connectionID
            connectedAt = now
            level = 0
            self.pending?.phase = .requesting
            self.pending?.transactionID = UInt32(truncatingIfNeeded: random.next())
            return transmit(now: now, random: &random)
        case (.requesting, .announce(_, let interval, let leechers, let seeders, let peers), .announce):
            pending = nil
            level = 0
            return .announced(
                AnnounceResponse(
                    interval: interval >= 0 ? Int64(interval) : nil, seeders: seeders >= 0 ? Int64(seeders) : nil,
                    leechers: leechers >= 0 ? Int64(leechers) : nil, peers: peers))
        case (.requesting, .scrape(_, let counts), .scrape):
            pending = nil
            level = 0
            return .scraped(counts)
        default:
            return .ignored
        }
    }

    /// The timeout for the current level: 15·2ⁿ seconds.
    public var currentTimeout: Interval {
        configuration.retransmitBase * (Int64(1) << Int64(min(level, 62)))
    }

    /// Sends the pending request, or a connect first when the connection id is missing or expired.
    private mutating func transmit<Random: RandomNumberGenerator>(now: Instant, random: inout Random) -> Outcome {
        guard var current = pending else { return .ignored }
        let valid = connectionID != nil && now < connectedAt + configuration.connectionIDLifetime
        var packet: [UInt8] = []
        current.phase = valid ? .requesting : .connecting
        switch current.phase {
        case .connecting:
            UDPTrackerRequest.connect(transactionID: current.transactionID).encode(into: &packet)
        case .requesting:
            let connectionID = connectionID ?? 0
            switch current.request {
            case .announce(let request):
                UDPTrackerRequest.announce(connectionID: connectionID, transactionID: current.transactionID, UDPAnnounce(request))
                    .encode(into: &packet)
            case .scrape(let hashes):
                UDPTrackerRequest.scrape(connectionID: connectionID, transactionID: current.transactionID, infoHashes: hashes)
                    .encode(into: &packet)
            }
        }
        current.deadline = now + currentTimeout
        pending = current
        return .send(packet)
    }
}
