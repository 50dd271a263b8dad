import ShoalCore
import ShoalWire

/// Peer exchange for one torrent (BEP 11), as a pure value: which of our connections can be passed on,
/// what each peer that speaks `ut_pex` has been told, when it may be told again, and what we take from
/// what it tells us.
///
/// - **What we send**: our handshaken connections, each at the address where it can be reached: a peer
///   we dialled at the address we dialled (flag `reachable`, 0x10), a peer that dialled us at its
///   address with the listen port of its extension handshake (`p`), and not at all without one (its
///   source port reaches nobody). Flag `seed` (0x02) for a peer that has every piece or says
///   `upload_only`. Encryption and uTP flags are never set: Shoal speaks plain TCP.
/// - **When**: a peer's first message ``Limits/firstMessageDelay`` after its extension handshake (the
///   torrent's other connections have a moment to open), then at most one every ``Limits/interval``
///   (BEP 11: "no more than 1 PEX message per minute"), and only when something changed. Each message is
///   the difference between what the peer was told and our connections now, at most
///   ``PeerExchangeMessage/maxPeersPerMessage`` added and as many dropped (the rest waits for the next
///   one), so an address is never added and dropped in one message and short connections in between
///   are elided, as BEP 11 allows.
/// - **What we take**: at most ``Limits/maxLearnedPerMessage`` addresses of a message (a random choice
///   when there are more) and ``Limits/maxLearnedPerPeer`` from one peer over its connection, so that no
///   single source fills the candidate list (BEP 11 "Security Considerations"); a peer's third message
///   within a minute is ignored (libtorrent's flood rule); as a seed, peers flagged seed are skipped.
///   `dropped` is not acted on: the planner retries and forgets addresses on its own.
struct PeerExchange: Sendable {
    struct Limits: Hashable, Sendable {
        var interval: Interval = .seconds(60)
        var firstMessageDelay: Interval = .seconds(3)
        var maxLearnedPerMessage = PeerExchangeMessage.maxPeersPerMessage
        var maxLearnedPerPeer = 500
    }

    /// One connection, as PEX sees it.
    struct Connection: Sendable {
        var address: PeerAddress
        var outgoing: Bool
        var handshaken = false
        /// From its extension handshake.
        var listenPort: UInt16?
        var uploadOnly = false
        /// Set when the peer speaks `ut_pex` (and PEX is on): it is sent messages.
        var exchange: Exchange?
        /// When its last two messages were taken.
        var receivedAt: [Instant] = []
        /// Addresses taken from it so far.
        var learned = 0
    }

    /// What we keep for a peer that speaks `ut_pex`, to send it messages.
    struct Exchange: Sendable {
        /// Addresses it was told (added and not yet dropped).
        var told: Set<PeerAddress> = []
        var nextSend: Instant
    }

    let enabled: Bool
    let limits: Limits
    private(set) var connections: [PeerKey: Connection] = [:]
    /// The earliest `nextSend` of any peer (nil: none).
    private(set) var nextDeadline: Instant?

    init(enabled: Bool, limits: Limits = Limits()) {
        self.enabled = enabled
        self.limits = limits
    }

    // MARK: - Connections

    /// A connection opened (dialled by us: `outgoing`).
    mutating func connected(_ key: PeerKey, address: PeerAddress, outgoing: Bool) {
        connections[key] = Connection(address: address, outgoing: outgoing)
    }

    /// The BitTorrent handshakes were exchanged: the connection counts as established (BEP 11 passes on
    /// only established connections).
    mutating func handshaken(_ key: PeerKey) {
        connections[key]?.handshaken = true
    }

    /// The peer's extension handshake (merged with its earlier ones).
    mutating func extensionHandshake(_ key: PeerKey, _ handshake: ExtensionHandshake, now: Instant) {
        guard var connection = connections[key] else { return }
        connection.listenPort = handshake.listenPort
        connection.uploadOnly = handshake.uploadOnly ?? false
        let speaks = handshake.id(for: PeerExchangeMessage.extensionName) != nil
        if enabled && speaks && connection.exchange == nil {
            connection.exchange = Exchange(nextSend: now + limits.firstMessageDelay)
        } else if !speaks {
            connection.exchange = nil
        }
        connections[key] = connection
        updateDeadline()
    }

    mutating func left(_ key: PeerKey) {
        guard connections.removeValue(forKey: key)?.exchange != nil else { return }
        updateDeadline()
    }

    /// Where the connection's peer can be reached, and its flags; nil when it cannot be passed on.
    func entry(_ key: PeerKey, isSeed: Bool) -> PeerExchangeMessage.Entry? {
        guard let connection = connections[key], connection.handshaken else { return nil }
        var flags: PeerExchangeMessage.Flags = isSeed || connection.uploadOnly ? .seed : []
        if connection.outgoing {
            flags.insert(.reachable)
            return .init(connection.address, flags: flags)
        }
        guard let port = connection.listenPort else { return nil }
        return .init(PeerAddress(host: connection.address.host, port: port), flags: flags)
    }

    /// Where the peers of our connections can be reached (those that can be), in key order.
    func reachableAddresses() -> [PeerAddress] {
        connections.keys.sorted().compactMap { entry($0, isSeed: false)?.address }
    }

    // MARK: - Sending

    /// The messages due at `now`: for each peer whose turn it is, what changed since it was last told.
    /// `isSeed` says which connections' peers have every piece.
    mutating func messagesDue(now: Instant, isSeed: (PeerKey) -> Bool) -> [(PeerKey, PeerExchangeMessage)] {
        guard enabled, let deadline = nextDeadline, now >= deadline else { return [] }
        var live: [PeerKey: PeerExchangeMessage.Entry] = [:]
        for key in connections.keys {
            if let entry = entry(key, isSeed: isSeed(key)) { live[key] = entry }
        }
        var messages: [(PeerKey, PeerExchangeMessage)] = []
        for key in connections.keys.sorted() {
            guard var exchange = connections[key]?.exchange, now >= exchange.nextSend else { continue }
            var current: [PeerAddress: PeerExchangeMessage.Flags] = [:]
            for (other, entry) in live where other != key { current[entry.address] = entry.flags }
            // Its own address is of no use to it.
            if let own = live[key]?.address { current[own] = nil }
            let added = current.keys.filter { !exchange.told.contains($0) }.sorted()
                .prefix(PeerExchangeMessage.maxPeersPerMessage)
            let dropped = exchange.told.filter { current[$0] == nil }.sorted().prefix(PeerExchangeMessage.maxPeersPerMessage)
            exchange.told.formUnion(added)
            exchange.told.subtract(dropped)
            exchange.nextSend = now + limits.interval
            connections[key]?.exchange = exchange
            let message = PeerExchangeMessage(
                added: added.map { .init($0, flags: current[$0] ?? []) }, dropped: Array(dropped))
            if !message.isEmpty { messages.append((key, message)) }
        }
        updateDeadline()
        return messages
    }

    // MARK: - Receiving

    /// A message from a peer: the addresses worth trying (see the type's rules).
    mutating func received(
        _ message: PeerExchangeMessage, from key: PeerKey, now: Instant, weAreSeed: Bool, random: inout SplitMix64
    ) -> [PeerAddress] {
        guard enabled, var connection = connections[key] else { return [] }
        if connection.receivedAt.count == 2, now < connection.receivedAt[0] + limits.interval { return [] }
        connection.receivedAt = Array((connection.receivedAt + [now]).suffix(2))
        var seen = Set<PeerAddress>()
        var candidates = message.added.filter { entry in
            !(weAreSeed && entry.flags.contains(.seed)) && entry.address != connection.address
                && seen.insert(entry.address).inserted
        }.map(\.address)
        let room = max(0, min(limits.maxLearnedPerMessage, limits.maxLearnedPerPeer - connection.learned))
        if candidates.count > room {
            // A random choice, so that a peer cannot decide which of its addresses we try.
            for index in 0..<room {
                let pick = index + Int(random.next() % UInt64(candidates.count - index))
                candidates.swapAt(index, pick)
            }
            candidates = Array(candidates.prefix(room))
        }
        connection.learned += candidates.count
        connections[key] = connection
        return candidates
    }

    private mutating func updateDeadline() {
        nextDeadline = connections.values.compactMap { $0.exchange?.nextSend }.min()
    }
}
