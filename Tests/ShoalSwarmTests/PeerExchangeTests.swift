import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

@Suite("Peer exchange bookkeeping (BEP 11)")
struct PeerExchangeTests {
    private static let start = Instant.zero + .seconds(100)
    private static let speaksPEX = ExtensionHandshake(messages: ["ut_pex": 7], listenPort: 7000)
    private static let silent = ExtensionHandshake(messages: [:], listenPort: nil)

    private static func address(_ index: Int, port: UInt16 = 6881) -> PeerAddress {
        PeerAddress(host: .ipv4(0x0A00_0000 | UInt32(index)), port: port)
    }

    /// A PEX state with `count` handshaken outgoing connections (keys 1...count), all speaking PEX.
    private static func exchange(outgoing count: Int, now: Instant = start) -> PeerExchange {
        var exchange = PeerExchange(enabled: true)
        for index in 1...count {
            exchange.connected(PeerKey(index), address: address(index), outgoing: true)
            exchange.handshaken(PeerKey(index))
            exchange.extensionHandshake(PeerKey(index), speaksPEX, now: now)
        }
        return exchange
    }

    @Test func tellsEachPeerOfTheOthersWithFlagsAfterTheFirstDelay() {
        var exchange = Self.exchange(outgoing: 2)
        // An incoming peer with a listen port, one without, one not yet handshaken.
        exchange.connected(3, address: Self.address(3, port: 50000), outgoing: false)
        exchange.handshaken(3)
        exchange.extensionHandshake(3, ExtensionHandshake(listenPort: 7003, uploadOnly: true), now: Self.start)
        exchange.connected(4, address: Self.address(4, port: 50001), outgoing: false)
        exchange.handshaken(4)
        exchange.connected(5, address: Self.address(5), outgoing: true)
        #expect(exchange.nextDeadline == Self.start + .seconds(3))
        #expect(exchange.messagesDue(now: Self.start + .seconds(2), isSeed: { _ in false }).isEmpty)
        let messages = exchange.messagesDue(now: Self.start + .seconds(3), isSeed: { $0 == 2 })
        #expect(messages.map(\.0) == [1, 2], "only peers that speak ut_pex are sent messages")
        let toFirst = messages[0].1
        #expect(toFirst.added == [
            .init(Self.address(2), flags: [.reachable, .seed]),
            .init(Self.address(3, port: 7003), flags: .seed),
        ])
        #expect(toFirst.dropped.isEmpty)
        #expect(messages[1].1.added.map(\.address) == [Self.address(1), Self.address(3, port: 7003)])
        #expect(exchange.nextDeadline == Self.start + .seconds(63), "then once a minute")
    }

    @Test func sendsOnlyChangesAndAtMostOnceAMinute() {
        var exchange = Self.exchange(outgoing: 3)
        _ = exchange.messagesDue(now: Self.start + .seconds(3), isSeed: { _ in false })
        // Nothing changed: no message, and none before the minute is up.
        #expect(exchange.messagesDue(now: Self.start + .seconds(63), isSeed: { _ in false }).isEmpty)
        exchange.left(3)
        exchange.connected(9, address: Self.address(9), outgoing: true)
        exchange.handshaken(9)
        #expect(exchange.messagesDue(now: Self.start + .seconds(100), isSeed: { _ in false }).isEmpty)
        let messages = exchange.messagesDue(now: Self.start + .seconds(123), isSeed: { _ in false })
        let toFirst = messages.first { $0.0 == 1 }?.1
        #expect(toFirst?.added.map(\.address) == [Self.address(9)])
        #expect(toFirst?.dropped == [Self.address(3)])
        // A connection that came and went between two messages is never mentioned.
        exchange.connected(10, address: Self.address(10), outgoing: true)
        exchange.handshaken(10)
        exchange.left(10)
        #expect(exchange.messagesDue(now: Self.start + .seconds(183), isSeed: { _ in false }).isEmpty)
    }

    @Test func atMostFiftyAddedAndFiftyDroppedPerMessage() {
        var exchange = Self.exchange(outgoing: 1)
        for index in 2...121 {
            exchange.connected(PeerKey(index), address: Self.address(index), outgoing: true)
            exchange.handshaken(PeerKey(index))
        }
        var told = 0
        var minute = 0
        while true {
            let due = exchange.messagesDue(now: Self.start + .seconds(Int64(3 + 60 * minute)), isSeed: { _ in false })
            minute += 1
            guard let message = due.first(where: { $0.0 == 1 })?.1 else { break }
            #expect(message.added.count <= 50)
            told += message.added.count
        }
        #expect(told == 120 && minute == 4, "120 peers in messages of 50, 50 and 20")
        for index in 2...121 { exchange.left(PeerKey(index)) }
        let dropped = exchange.messagesDue(now: Self.start + .seconds(3 + 60 * 4), isSeed: { _ in false })
        #expect(dropped.first?.1.dropped.count == 50)
    }

    @Test func takesAtMostFiftyAddressesAMessageAndIgnoresFloods() {
        var exchange = Self.exchange(outgoing: 1)
        var random = SeededGenerator(seed: 1)
        let many = PeerExchangeMessage(added: (1000..<1200).map { .init(Self.address($0)) })
        let first = exchange.received(many, from: 1, now: Self.start, weAreSeed: false, random: &random)
        #expect(first.count == 50)
        #expect(Set(first).count == 50)
        #expect(first.allSatisfy { many.added.map(\.address).contains($0) })
        #expect(exchange.received(many, from: 1, now: Self.start + .seconds(10), weAreSeed: false, random: &random).count == 50)
        // A third message within the minute is ignored.
        #expect(exchange.received(many, from: 1, now: Self.start + .seconds(20), weAreSeed: false, random: &random).isEmpty)
        #expect(exchange.received(many, from: 1, now: Self.start + .seconds(71), weAreSeed: false, random: &random).count == 50)
        #expect(exchange.received(many, from: 9, now: Self.start, weAreSeed: false, random: &random).isEmpty, "unknown peer")
    }

    @Test func boundsWhatOnePeerCanTeachAndSkipsSeedsWhenSeeding() {
        var exchange = Self.exchange(outgoing: 1)
        var random = SeededGenerator(seed: 2)
        var learned = 0
        for round in 0..<20 {
            let message = PeerExchangeMessage(added: (0..<50).map { .init(Self.address(5000 + round * 50 + $0)) })
            learned += exchange.received(
                message, from: 1, now: Self.start + .seconds(Int64(61 * round)), weAreSeed: false, random: &random
            ).count
        }
        #expect(learned == 500, "at most 500 addresses from one peer")
        var other = Self.exchange(outgoing: 1)
        let mixed = PeerExchangeMessage(added: [
            .init(Self.address(7), flags: .seed), .init(Self.address(8)), .init(Self.address(1)), .init(Self.address(8)),
        ])
        #expect(other.received(mixed, from: 1, now: Self.start, weAreSeed: true, random: &random) == [Self.address(8)])
    }

    @Test func disabledExchangeSendsAndTakesNothing() {
        var exchange = PeerExchange(enabled: false)
        var random = SeededGenerator(seed: 3)
        exchange.connected(1, address: Self.address(1), outgoing: true)
        exchange.handshaken(1)
        exchange.extensionHandshake(1, Self.speaksPEX, now: Self.start)
        #expect(exchange.nextDeadline == nil)
        #expect(exchange.messagesDue(now: Self.start + .seconds(600), isSeed: { _ in false }).isEmpty)
        #expect(exchange.received(.init(added: [.init(Self.address(2))]), from: 1, now: Self.start, weAreSeed: false, random: &random).isEmpty)
        // The addresses to carry over are still known.
        #expect(exchange.reachableAddresses() == [Self.address(1)])
    }
}
