import NIOCore
import ShoalCore
import Testing

@testable import ShoalWire

/// Scripted event sequences through one state machine, with no channel at all.
@Suite("Peer connection state machine")
struct PeerConnectionStateMachineTests {
    typealias Machine = PeerConnection.StateMachine

    static let allBits: ReservedBits = [.extensionProtocol, .fastExtension, .dht]
    static let noBits: ReservedBits = []

    private static func configuration(reserved: ReservedBits = allBits) -> PeerConnection.Configuration {
        PeerConnection.Configuration(
            infoHash: WireFixtures.infoHash, peerID: WireFixtures.ourID, reserved: reserved,
            extensionHandshake: ExtensionHandshake(messages: ["ut_metadata": 1], client: "Shoal"), dhtPort: 6881)
    }

    /// Our pieces: 0, 2, 4 of 10.
    private static var somePieces: Bitfield {
        var field = Bitfield(count: 10)
        for index in [0, 2, 4] { field.set(index) }
        return field
    }

    /// A machine past the handshake (both sides with `theirs` bits, we with `ours`), the peer's
    /// first message (if any) received, and the actions so far dropped.
    private static func connected(
        ours: ReservedBits = allBits, theirs: ReservedBits = allBits, ourPieces: Bitfield? = somePieces,
        first: PeerMessage? = .haveAll
    ) -> Machine {
        var machine = Machine(configuration: configuration(reserved: ours), ourPieces: ourPieces, now: WireFixtures.at(0))
        _ = machine.start(now: WireFixtures.at(0))
        _ = machine.receivedHandshake(
            Handshake(reserved: theirs, infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID), now: WireFixtures.at(0))
        if let first { _ = machine.received(first, now: WireFixtures.at(0)) }
        return machine
    }

    private static func sent(_ actions: [PeerAction]) -> [PeerMessage] {
        actions.compactMap { if case .send(let message) = $0 { message } else { nil } }
    }

    private static func events(_ actions: [PeerAction]) -> [PeerEvent] {
        actions.compactMap { if case .emit(let event) = $0 { event } else { nil } }
    }

    private static func closeReason(_ actions: [PeerAction]) -> WireError? {
        guard case .close(let error) = actions.last else { return nil }
        return error
    }

    private func block(_ piece: UInt32, _ offset: UInt32 = 0, _ length: UInt32 = 16384) -> BlockRequest {
        BlockRequest(piece: piece, offset: offset, length: length)
    }

    private func data(_ block: BlockRequest) -> ByteBuffer { WireFixtures.blockData(block) }

    // MARK: Handshake

    @Test func outgoingConnectionSendsHandshakeThenBitfieldAndExtensions() {
        var machine = Machine(configuration: Self.configuration(), ourPieces: Self.somePieces, now: WireFixtures.at(0))
        #expect(machine.phase == .awaitingHandshake)
        let start = machine.start(now: WireFixtures.at(0))
        #expect(start == [.sendHandshake(machine.ourHandshake)])
        let started = machine.start(now: WireFixtures.at(0))
        #expect(started.isEmpty, "only once")
        let actions = machine.receivedHandshake(
            Handshake(reserved: Self.allBits, infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID),
            now: WireFixtures.at(1))
        let ourExtensions = ExtensionHandshake(messages: ["ut_metadata": 1], client: "Shoal", requestQueueLength: 250)
        #expect(
            actions == [
                .emit(.connected(peerID: WireFixtures.theirID, reserved: Self.allBits)),
                .send(.bitfield(Self.somePieces)),
                .send(ourExtensions.message),
                .send(.port(6881)),
            ])
        #expect(machine.phase == .awaitingFirstMessage)
        #expect(machine.peerID == WireFixtures.theirID)
        #expect(machine.peerReserved == Self.allBits)
        #expect(machine.supportsFastExtension && machine.supportsExtensionProtocol)
        #expect(machine.amChoking && !machine.amInterested && machine.peerChoking && !machine.peerInterested)
    }

    @Test func fastPeersGetHaveAllOrHaveNoneInsteadOfABitfield() {
        func firstMessages(ours: ReservedBits, theirs: ReservedBits, pieces: Bitfield?) -> [PeerMessage] {
            var machine = Machine(configuration: Self.configuration(reserved: ours), ourPieces: pieces, now: WireFixtures.at(0))
            let actions = machine.receivedHandshake(
                Handshake(reserved: theirs, infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID),
                now: WireFixtures.at(0))
            #expect(actions.first == .sendHandshake(machine.ourHandshake), "the handshake goes first without start()")
            return Self.sent(actions)
        }
        let fast: ReservedBits = [.fastExtension]
        #expect(firstMessages(ours: fast, theirs: fast, pieces: Bitfield(count: 10, allSet: true)) == [.haveAll])
        #expect(firstMessages(ours: fast, theirs: fast, pieces: Bitfield(count: 10)) == [.haveNone])
        #expect(firstMessages(ours: fast, theirs: fast, pieces: nil) == [.haveNone])
        // Without the fast extension: a seed sends its full bitfield, and a peer with nothing sends nothing.
        #expect(
            firstMessages(ours: fast, theirs: [], pieces: Bitfield(count: 10, allSet: true))
                == [.bitfield(Bitfield(count: 10, allSet: true))])
        #expect(firstMessages(ours: [], theirs: fast, pieces: Bitfield(count: 10)) == [])
        // The extension handshake and DHT port only when both sides set the bits.
        #expect(firstMessages(ours: Self.allBits, theirs: [.dht], pieces: nil) == [.port(6881)])
    }

    @Test func refusesAnotherTorrentAndOurselves() throws {
        var machine = Machine(configuration: Self.configuration(), ourPieces: nil, now: WireFixtures.at(0))
        let wrong = machine.receivedHandshake(
            Handshake(reserved: [], infoHash: WireFixtures.otherInfoHash, peerID: WireFixtures.theirID), now: WireFixtures.at(0))
        #expect(Self.closeReason(wrong)?.code == .infoHashMismatch)
        #expect(machine.phase == .closed)
        #expect(machine.closeReason?.code == .infoHashMismatch)

        var selfMachine = Machine(configuration: Self.configuration(), ourPieces: nil, now: WireFixtures.at(0))
        _ = selfMachine.start(now: WireFixtures.at(0))
        let ourselves = selfMachine.receivedHandshake(selfMachine.ourHandshake, now: WireFixtures.at(0))
        let reason = try #require(Self.closeReason(ourselves))
        #expect(reason.code == .connectedToSelf)
        #expect(reason.disposition == .ban)
        #expect(ourselves.count == 1, "no handshake resent, no bitfield")
    }

    @Test func handshakeTimesOut() {
        var machine = Machine(configuration: Self.configuration(), ourPieces: nil, now: WireFixtures.at(5))
        #expect(machine.nextDeadline == WireFixtures.at(15))
        let tick = machine.timerFired(now: WireFixtures.at(14))
        #expect(tick.isEmpty)
        let tick2 = machine.timerFired(now: WireFixtures.at(15))
        #expect(tick2 == [.close(WireError(.handshakeTimeout))])
        #expect(machine.nextDeadline == nil)
    }

    @Test func messagesBeforeTheHandshakeClose() {
        var machine = Machine(configuration: Self.configuration(), ourPieces: nil, now: WireFixtures.at(0))
        let actions = machine.received(.interested, now: WireFixtures.at(0))
        #expect(Self.closeReason(actions) == WireError(.messageBeforeHandshake, messageID: 2))
    }

    @Test func commandsBeforeTheHandshakeTakeEffectAfterIt() {
        var machine = Machine(configuration: Self.configuration(reserved: []), ourPieces: Bitfield(count: 4), now: WireFixtures.at(0))
        let unchoked = machine.unchoke(now: WireFixtures.at(0))
        #expect(unchoked.isEmpty)
        let interest = machine.setInterested(true, now: WireFixtures.at(0))
        #expect(interest.isEmpty)
        let announced = machine.announceHave(piece: 1, now: WireFixtures.at(0))
        #expect(announced.isEmpty)
        let requested = machine.request(block(0), now: WireFixtures.at(0))
        #expect(requested == [.emit(.requestsReturned([block(0)]))])
        let actions = machine.receivedHandshake(
            Handshake(reserved: [], infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID), now: WireFixtures.at(0))
        var expected = Bitfield(count: 4)
        expected.set(1)
        #expect(Self.sent(actions) == [.bitfield(expected), .unchoke, .interested])
    }

    // MARK: The first message

    @Test func bitfieldOnlyAsTheFirstMessage() {
        var machine = Self.connected(first: nil)
        var field = Bitfield(count: 10)
        field.set(3)
        let reply = machine.received(.bitfield(field), now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.peerPieces(field)])
        #expect(machine.phase == .established)
        #expect(machine.peerPieces == field)
        let late = machine.received(.haveAll, now: WireFixtures.at(2))
        #expect(Self.closeReason(late)?.code == .lateBitfield)
    }

    @Test func aFirstMessageThatIsNotABitfieldMeansNoPieces() {
        var machine = Self.connected(first: nil)
        let actions = machine.received(.interested, now: WireFixtures.at(1))
        #expect(Self.events(actions) == [.peerPieces(Bitfield(count: 10)), .peerInterested])
        let late = machine.received(.haveAll, now: WireFixtures.at(1))
        #expect(Self.closeReason(late)?.code == .lateBitfield)
    }

    /// aria2 sends its bitfield after its extension handshake and `interested`, once it has pieces: a late
    /// bitfield adds pieces (as haves) and never takes any away.
    @Test func aLateBitfieldAddsPieces() {
        var machine = Self.connected(first: nil)
        _ = machine.received(.interested, now: WireFixtures.at(1))
        _ = machine.received(.have(piece: 1), now: WireFixtures.at(1))
        var field = Bitfield(count: 10)
        field.set(2)
        field.set(5)
        let reply = machine.received(.bitfield(field), now: WireFixtures.at(2))
        #expect(Self.events(reply) == [.peerHas(piece: 2), .peerHas(piece: 5)])
        #expect(machine.peerPieces?.setIndices == [1, 2, 5])
        let wrongSize = machine.received(.bitfield(Bitfield(count: 17)), now: WireFixtures.at(3))
        #expect(Self.closeReason(wrongSize) != nil)
    }

    /// Transmission sends its extension handshake before its bitfield.
    @Test func extensionMessagesPortAndKeepAlivesMayPrecedeTheBitfield() {
        var machine = Self.connected(first: nil)
        let extensions = ExtensionHandshake(messages: ["ut_pex": 2], requestQueueLength: 512)
        let reply = machine.received(extensions.message, now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.extensionHandshake(extensions)])
        let reply2 = machine.received(.port(7000), now: WireFixtures.at(1))
        #expect(Self.events(reply2) == [.dhtPort(7000)])
        let reply3 = machine.received(.keepAlive, now: WireFixtures.at(1))
        #expect(reply3.isEmpty)
        let reply4 = machine.received(.unknown(id: 99, payload: ByteBuffer()), now: WireFixtures.at(1))
        #expect(reply4.isEmpty)
        #expect(machine.phase == .awaitingFirstMessage)
        let reply5 = machine.received(.haveAll, now: WireFixtures.at(1))
        #expect(Self.events(reply5) == [.peerPieces(Bitfield(count: 10, allSet: true))])
        #expect(machine.peerExtensions?.requestQueueLength == 512)
    }

    @Test func bitfieldFromTheMachinesSideIsCheckedToo() {
        var spare = Self.connected(first: nil)
        let actions = spare.received(.bitfield(ByteBuffer(bytes: [0, 0x20])), now: WireFixtures.at(1))
        #expect(Self.closeReason(actions)?.code == .bitfieldSpareBits)
        #expect(Self.closeReason(actions)?.disposition == .ban)
        var short = Self.connected(first: nil)
        #expect(Self.closeReason(short.received(.bitfield(ByteBuffer(bytes: [0])), now: WireFixtures.at(1)))?.code == .wrongLength(expected: 3))
    }

    @Test func fastMessagesWithoutTheFastExtensionClose() {
        let fastOnly: [PeerMessage] = [
            .haveAll, .haveNone, .suggestPiece(1), .allowedFast(1), .rejectRequest(block(1)),
        ]
        for message in fastOnly {
            var machine = Self.connected(ours: Self.allBits, theirs: [.extensionProtocol], first: nil)
            let reason = Self.closeReason(machine.received(message, now: WireFixtures.at(1)))
            #expect(reason?.code == .fastExtensionNotNegotiated, "\(message)")
            #expect(reason?.messageID == message.id)
        }
    }

    // MARK: Pieces, choking and interest

    @Test func haveReportsNewPiecesAndRefusesOutOfRange() {
        var machine = Self.connected(first: .haveNone)
        let reply = machine.received(.have(piece: 3), now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.peerHas(piece: 3)])
        let reply2 = machine.received(.have(piece: 3), now: WireFixtures.at(1))
        #expect(reply2.isEmpty, "already had it")
        #expect(machine.peerPieces?.setIndices == [3])
        let reason = Self.closeReason(machine.received(.have(piece: 10), now: WireFixtures.at(1)))
        #expect(reason == WireError(.pieceIndexOutOfRange(10, pieceCount: 10), messageID: 4))
    }

    @Test func chokeAndInterestEventsOnlyOnChange() {
        var machine = Self.connected()
        let reply = machine.received(.choke, now: WireFixtures.at(1))
        #expect(reply.isEmpty, "connections start choked")
        let reply2 = machine.received(.unchoke, now: WireFixtures.at(1))
        #expect(Self.events(reply2) == [.peerUnchoked])
        let reply3 = machine.received(.unchoke, now: WireFixtures.at(1))
        #expect(reply3.isEmpty)
        #expect(!machine.peerChoking)
        let reply4 = machine.received(.interested, now: WireFixtures.at(1))
        #expect(Self.events(reply4) == [.peerInterested])
        let reply5 = machine.received(.interested, now: WireFixtures.at(1))
        #expect(reply5.isEmpty)
        let reply6 = machine.received(.notInterested, now: WireFixtures.at(1))
        #expect(Self.events(reply6) == [.peerNotInterested])
        let reply7 = machine.received(.choke, now: WireFixtures.at(1))
        #expect(Self.events(reply7) == [.peerChoked(returned: [])])

        let unchoked = machine.unchoke(now: WireFixtures.at(1))
        #expect(unchoked == [.send(.unchoke)])
        let unchoked2 = machine.unchoke(now: WireFixtures.at(1))
        #expect(unchoked2.isEmpty)
        let interest = machine.setInterested(true, now: WireFixtures.at(1))
        #expect(interest == [.send(.interested)])
        let interest2 = machine.setInterested(true, now: WireFixtures.at(1))
        #expect(interest2.isEmpty)
        let interest3 = machine.setInterested(false, now: WireFixtures.at(1))
        #expect(interest3 == [.send(.notInterested)])
        let choked = machine.choke(now: WireFixtures.at(1))
        #expect(choked == [.send(.choke)])
        let choked2 = machine.choke(now: WireFixtures.at(1))
        #expect(choked2.isEmpty)
    }

    @Test func announceHaveSendsOnlyNewPieces() {
        var machine = Self.connected(first: .haveNone)
        let announced = machine.announceHave(piece: 5, now: WireFixtures.at(1))
        #expect(announced == [.send(.have(piece: 5))])
        let announced2 = machine.announceHave(piece: 5, now: WireFixtures.at(1))
        #expect(announced2.isEmpty)
        let announced3 = machine.announceHave(piece: 99, now: WireFixtures.at(1))
        #expect(announced3.isEmpty)
        #expect(machine.ourPieces?.setIndices == [0, 2, 4, 5])
    }

    @Test func aPeerThatHasThePieceIsNotToldUnlessRedundantHavesAreOn() {
        // The peer has pieces 1 and 5 of 10.
        let field = ByteBuffer(bytes: [0b0100_0100, 0])
        var machine = Self.connected(first: .bitfield(field))
        let toldOfNew = machine.announceHave(piece: 6, now: WireFixtures.at(1))
        #expect(toldOfNew == [.send(.have(piece: 6))])
        let toldOfOwn = machine.announceHave(piece: 5, now: WireFixtures.at(1))
        #expect(toldOfOwn.isEmpty)
        #expect(machine.ourPieces?[5] == true, "recorded all the same")

        var configuration = Self.configuration()
        configuration.sendsRedundantHaves = true
        var redundant = Machine(configuration: configuration, ourPieces: Self.somePieces, now: WireFixtures.at(0))
        _ = redundant.start(now: WireFixtures.at(0))
        _ = redundant.receivedHandshake(
            Handshake(reserved: Self.allBits, infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID),
            now: WireFixtures.at(0))
        _ = redundant.received(.bitfield(field), now: WireFixtures.at(0))
        let told = redundant.announceHave(piece: 5, now: WireFixtures.at(1))
        #expect(told == [.send(.have(piece: 5))])
    }

    // MARK: Our requests

    @Test func requestsGoOutOnlyWhenUnchokedAndForPiecesThePeerHas() {
        var machine = Self.connected(first: .bitfield(ByteBuffer(bytes: [0b1100_0000, 0])))
        let requested = machine.request(block(0), now: WireFixtures.at(1))
        #expect(requested == [.emit(.requestsReturned([block(0)]))], "choked")
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        let requested2 = machine.request(block(0), now: WireFixtures.at(2))
        #expect(requested2 == [.send(.request(block(0)))])
        let requested3 = machine.request(block(0), now: WireFixtures.at(2))
        #expect(requested3.isEmpty, "already outstanding")
        let requested4 = machine.request(block(2), now: WireFixtures.at(2))
        #expect(requested4 == [.emit(.requestsReturned([block(2)]))], "peer lacks it")
        let requested5 = machine.request(block(1, 0, 0), now: WireFixtures.at(2))
        #expect(requested5 == [.emit(.requestsReturned([block(1, 0, 0)]))])
        let requested6 = machine.request(block(1, 0, 16385), now: WireFixtures.at(2))
        #expect(requested6 == [.emit(.requestsReturned([block(1, 0, 16385)]))])
        let requested7 = machine.request(block(1, 16384, 100), now: WireFixtures.at(3))
        #expect(requested7 == [.send(.request(block(1, 16384, 100)))])
        #expect(machine.outstandingRequests.map(\.block) == [block(0), block(1, 16384, 100)])
        #expect(machine.outstandingRequests.map(\.sentAt) == [WireFixtures.at(2), WireFixtures.at(3)])
    }

    @Test func aBatchOfRequestsActsAsEachRequestInTurn() {
        // Sent, already outstanding (twice in the batch), the peer lacks it, too long, sent: one by one and as a
        // batch give the same actions and the same queue.
        let blocks = [block(0), block(1, 16384, 100), block(0), block(2), block(1, 0, 16385), block(1)]
        var single = Self.connected(first: .bitfield(ByteBuffer(bytes: [0b1100_0000, 0])))
        var batch = single
        _ = single.received(.unchoke, now: WireFixtures.at(1))
        _ = batch.received(.unchoke, now: WireFixtures.at(1))
        let one = blocks.flatMap { single.request($0, now: WireFixtures.at(2)) }
        let all = batch.request(blocks, now: WireFixtures.at(2))
        #expect(all == one)
        #expect(Self.sent(all) == [.request(block(0)), .request(block(1, 16384, 100)), .request(block(1))])
        #expect(batch.outstandingRequests.map(\.block) == single.outstandingRequests.map(\.block))
        // Choked: every block comes back, each in its own event.
        var choked = Self.connected()
        let returned = choked.request([block(0), block(1)], now: WireFixtures.at(1))
        #expect(returned == [.emit(.requestsReturned([block(0)])), .emit(.requestsReturned([block(1)]))])
    }

    @Test func actionsCanBeAppendedToACallersArray() {
        var machine = Self.connected()
        var actions: [PeerAction] = [.emit(.snubbed)]
        machine.received(.interested, now: WireFixtures.at(1), into: &actions)
        #expect(actions == [.emit(.snubbed), .emit(.peerInterested)])
        _ = machine.unchoke(now: WireFixtures.at(1))
        machine.received(.request(block(0)), now: WireFixtures.at(1), into: &actions)
        machine.sendBlock(block(0), data: data(block(0)), now: WireFixtures.at(2), into: &actions)
        #expect(
            actions == [
                .emit(.snubbed), .emit(.peerInterested), .emit(.blockRequested(block(0))),
                .send(.piece(piece: 0, offset: 0, block: data(block(0)))),
            ])
        // A closing transition appends its close.
        machine.received(.request(block(99)), now: WireFixtures.at(2), into: &actions)
        #expect(actions.count == 5 && Self.closeReason(actions) != nil)
    }

    @Test func blocksArriveAsSlicesAndUnrequestedOnesAreReported() {
        var machine = Self.connected()
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.request(block(1, 0, 5), now: WireFixtures.at(1))
        let data = ByteBuffer(bytes: [1, 2, 3, 4, 5])
        let reply = machine.received(.piece(piece: 1, offset: 0, block: data), now: WireFixtures.at(2))
        #expect(
            Self.events(reply)
                == [.blockReceived(block(1, 0, 5), data: data)])
        #expect(machine.outstandingRequests.isEmpty)
        // The same block again, and a block of another length: unexpected, not fatal.
        let reply2 = machine.received(.piece(piece: 1, offset: 0, block: data), now: WireFixtures.at(2))
        #expect(
            Self.events(reply2)
                == [.unexpectedBlock(block(1, 0, 5), data: data)])
        #expect(machine.phase == .established)
    }

    @Test func chokeWithoutTheFastExtensionReturnsOutstandingRequests() {
        var machine = Self.connected(ours: [], theirs: [], first: .bitfield(Bitfield(count: 10, allSet: true)))
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.request(block(1), now: WireFixtures.at(1))
        _ = machine.request(block(2), now: WireFixtures.at(1))
        let reply = machine.received(.choke, now: WireFixtures.at(2))
        #expect(Self.events(reply) == [.peerChoked(returned: [block(1), block(2)])])
        #expect(machine.outstandingRequests.isEmpty)
    }

    @Test func chokeWithTheFastExtensionWaitsForRejects() {
        var machine = Self.connected()
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.request(block(1), now: WireFixtures.at(1))
        _ = machine.request(block(2), now: WireFixtures.at(1))
        let reply = machine.received(.choke, now: WireFixtures.at(2))
        #expect(Self.events(reply) == [.peerChoked(returned: [])])
        #expect(machine.outstandingRequests.count == 2)
        let reply2 = machine.received(.rejectRequest(block(1)), now: WireFixtures.at(2))
        #expect(Self.events(reply2) == [.requestRejected(block(1))])
        // A reject for what we never asked (or already saw answered) is reported, not fatal.
        let reply3 = machine.received(.rejectRequest(block(1)), now: WireFixtures.at(2))
        #expect(Self.events(reply3) == [.unexpectedReject(block(1))])
        #expect(machine.phase == .established)
        #expect(machine.outstandingRequests.map(\.block) == [block(2)])
    }

    @Test func allowedFastPiecesMayBeRequestedWhileChoked() {
        var machine = Self.connected()
        let reply = machine.received(.allowedFast(3), now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.allowedFast(piece: 3)])
        let reply2 = machine.received(.allowedFast(3), now: WireFixtures.at(1))
        #expect(reply2.isEmpty)
        let reply3 = machine.received(.allowedFast(10), now: WireFixtures.at(1))
        #expect(reply3.isEmpty, "out of range: ignored")
        let reply4 = machine.received(.suggestPiece(10), now: WireFixtures.at(1))
        #expect(reply4.isEmpty, "out of range: ignored")
        let reply5 = machine.received(.suggestPiece(4), now: WireFixtures.at(1))
        #expect(Self.events(reply5) == [.suggested(piece: 4)])
        #expect(machine.allowedFastFromPeer == [3])
        let requested = machine.request(block(3), now: WireFixtures.at(1))
        #expect(requested == [.send(.request(block(3)))])
        let requested2 = machine.request(block(4), now: WireFixtures.at(1))
        #expect(requested2 == [.emit(.requestsReturned([block(4)]))])
    }

    @Test func allowedFastFromThePeerIsBounded() {
        var machine = Self.connected(ourPieces: Bitfield(count: 1000))
        for piece in 0..<200 { _ = machine.received(.allowedFast(UInt32(piece)), now: WireFixtures.at(1)) }
        #expect(machine.allowedFastFromPeer.count == machine.configuration.maxAllowedFast)
    }

    @Test func outstandingRequestsAreBounded() {
        var configuration = Self.configuration()
        configuration.maxOutstandingRequests = 2
        var machine = Machine(configuration: configuration, ourPieces: Bitfield(count: 10), now: WireFixtures.at(0))
        _ = machine.receivedHandshake(
            Handshake(reserved: Self.allBits, infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID), now: WireFixtures.at(0))
        _ = machine.received(.haveAll, now: WireFixtures.at(0))
        _ = machine.received(.unchoke, now: WireFixtures.at(0))
        _ = machine.request(block(1), now: WireFixtures.at(0))
        _ = machine.request(block(2), now: WireFixtures.at(0))
        let requested = machine.request(block(3), now: WireFixtures.at(0))
        #expect(requested == [.emit(.requestsReturned([block(3)]))])
    }

    @Test func cancelWithoutTheFastExtensionForgetsTheRequest() {
        var machine = Self.connected(ours: [], theirs: [], first: .bitfield(Bitfield(count: 10, allSet: true)))
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.request(block(1), now: WireFixtures.at(1))
        let cancelled = machine.cancel(block(1), now: WireFixtures.at(2))
        #expect(cancelled == [.send(.cancel(block(1)))])
        let cancelled2 = machine.cancel(block(1), now: WireFixtures.at(2))
        #expect(cancelled2.isEmpty)
        #expect(machine.outstandingRequests.isEmpty)
        let late = machine.received(.piece(piece: 1, offset: 0, block: data(block(1))), now: WireFixtures.at(3))
        #expect(Self.events(late) == [.unexpectedBlock(block(1), data: data(block(1)))])
    }

    /// BEP 6: a cancelled request is still answered exactly once, by a block or a reject.
    @Test func cancelWithTheFastExtensionWaitsForTheAnswer() {
        var machine = Self.connected()
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.request(block(1), now: WireFixtures.at(1))
        _ = machine.request(block(2), now: WireFixtures.at(1))
        let cancelled = machine.cancel(block(1), now: WireFixtures.at(2))
        #expect(cancelled == [.send(.cancel(block(1)))])
        let cancelled2 = machine.cancel(block(2), now: WireFixtures.at(2))
        #expect(cancelled2 == [.send(.cancel(block(2)))])
        #expect(machine.outstandingRequests.isEmpty, "cancelled requests are not listed")
        let reply = machine.received(.rejectRequest(block(1)), now: WireFixtures.at(3))
        #expect(reply.isEmpty, "the expected answer")
        let late = machine.received(.piece(piece: 2, offset: 0, block: data(block(2))), now: WireFixtures.at(3))
        #expect(Self.events(late) == [.blockReceived(block(2), data: data(block(2)))])
        let reply2 = machine.received(.rejectRequest(block(1)), now: WireFixtures.at(3))
        #expect(Self.events(reply2) == [.unexpectedReject(block(1))])
        // Re-requesting a block whose cancel is unanswered returns it: the first answer is still due.
        _ = machine.request(block(3), now: WireFixtures.at(4))
        _ = machine.cancel(block(3), now: WireFixtures.at(4))
        let requested = machine.request(block(3), now: WireFixtures.at(4))
        #expect(requested == [.emit(.requestsReturned([block(3)]))])
        // An answer that never comes is forgotten after the snub timeout.
        _ = machine.timerFired(now: WireFixtures.at(64))
        let requested2 = machine.request(block(3), now: WireFixtures.at(65))
        #expect(requested2 == [.send(.request(block(3)))])
    }

    @Test func rejectsWithoutTheFastExtensionClose() {
        var machine = Self.connected(ours: [], theirs: [], first: nil)
        let reason = Self.closeReason(machine.received(.rejectRequest(block(1)), now: WireFixtures.at(1)))
        #expect(reason?.code == .fastExtensionNotNegotiated)
    }

    // MARK: The peer's requests

    @Test func peerRequestsWhileChokedAreRejectedOrIgnored() {
        var fast = Self.connected()
        let reply = fast.received(.request(block(0)), now: WireFixtures.at(1))
        #expect(reply == [.send(.rejectRequest(block(0)))])
        var slow = Self.connected(ours: [], theirs: [], first: .interested)
        let reply2 = slow.received(.request(block(0)), now: WireFixtures.at(1))
        #expect(reply2.isEmpty)
        #expect(slow.peerRequests.isEmpty)
    }

    @Test func peerRequestsAreQueuedAndServed() {
        var machine = Self.connected()
        _ = machine.unchoke(now: WireFixtures.at(1))
        let reply = machine.received(.request(block(0)), now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.blockRequested(block(0))])
        let reply2 = machine.received(.request(block(0)), now: WireFixtures.at(1))
        #expect(reply2.isEmpty, "duplicate")
        let reply3 = machine.received(.request(block(1)), now: WireFixtures.at(1))
        #expect(reply3 == [.send(.rejectRequest(block(1)))], "we lack it")
        #expect(machine.isRequestQueued(block(0)))
        let served = machine.sendBlock(block(0), data: ByteBuffer(bytes: [1]), now: WireFixtures.at(2))
        #expect(served.isEmpty, "wrong length")
        let answer = machine.sendBlock(block(0), data: data(block(0)), now: WireFixtures.at(2))
        #expect(answer == [.send(.piece(piece: 0, offset: 0, block: data(block(0))))])
        let served2 = machine.sendBlock(block(0), data: data(block(0)), now: WireFixtures.at(2))
        #expect(served2.isEmpty, "already sent")
        #expect(machine.peerRequests.isEmpty)
    }

    @Test func peerRequestsOutsideTheTorrentClose() {
        var machine = Self.connected()
        _ = machine.unchoke(now: WireFixtures.at(1))
        let reason = Self.closeReason(machine.received(.request(block(10)), now: WireFixtures.at(1)))
        #expect(reason == WireError(.pieceIndexOutOfRange(10, pieceCount: 10), messageID: 6))
        var long = Self.connected()
        let tooLong = Self.closeReason(long.received(.request(block(0, 0, 20000)), now: WireFixtures.at(1)))
        #expect(tooLong?.code == .invalidBlockLength(20000, limit: 16384))
    }

    @Test func peerRequestQueueIsBoundedByOurReqq() {
        var configuration = Self.configuration()
        configuration.maxPeerRequests = 3
        var machine = Machine(configuration: configuration, ourPieces: Bitfield(count: 10, allSet: true), now: WireFixtures.at(0))
        _ = machine.receivedHandshake(
            Handshake(reserved: Self.allBits, infoHash: WireFixtures.infoHash, peerID: WireFixtures.theirID), now: WireFixtures.at(0))
        _ = machine.unchoke(now: WireFixtures.at(0))
        for offset: UInt32 in 0..<3 { _ = machine.received(.request(block(1, offset * 16384)), now: WireFixtures.at(0)) }
        let reply = machine.received(.request(block(1, 3 * 16384)), now: WireFixtures.at(0))
        #expect(reply == [.send(.rejectRequest(block(1, 3 * 16384)))])
        #expect(machine.peerRequests.count == 3)
    }

    @Test func peerCancelsWithdrawTheRequest() {
        var machine = Self.connected()
        _ = machine.unchoke(now: WireFixtures.at(1))
        _ = machine.received(.request(block(0)), now: WireFixtures.at(1))
        let actions = machine.received(.cancel(block(0)), now: WireFixtures.at(1))
        #expect(actions == [.emit(.requestCancelled(block(0))), .send(.rejectRequest(block(0)))])
        let reply = machine.received(.cancel(block(0)), now: WireFixtures.at(1))
        #expect(reply.isEmpty)
        let served = machine.sendBlock(block(0), data: data(block(0)), now: WireFixtures.at(2))
        #expect(served.isEmpty)

        var slow = Self.connected(ours: [], theirs: [], first: nil)
        _ = slow.unchoke(now: WireFixtures.at(1))
        _ = slow.received(.request(block(0)), now: WireFixtures.at(1))
        let reply2 = slow.received(.cancel(block(0)), now: WireFixtures.at(1))
        #expect(reply2 == [.emit(.requestCancelled(block(0)))])
    }

    /// BEP 6: choking rejects the peer's requests, except for allowed-fast pieces.
    @Test func chokingRejectsQueuedRequestsExceptAllowedFast() {
        var machine = Self.connected()
        let allowed = machine.allowFast(piece: 2, now: WireFixtures.at(1))
        #expect(allowed == [.send(.allowedFast(2))])
        let allowed2 = machine.allowFast(piece: 2, now: WireFixtures.at(1))
        #expect(allowed2.isEmpty)
        let allowed3 = machine.allowFast(piece: 10, now: WireFixtures.at(1))
        #expect(allowed3.isEmpty)
        // While choked, the allowed-fast piece is served.
        let reply = machine.received(.request(block(2)), now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.blockRequested(block(2))])
        _ = machine.unchoke(now: WireFixtures.at(1))
        _ = machine.received(.request(block(0)), now: WireFixtures.at(1))
        _ = machine.received(.request(block(4)), now: WireFixtures.at(1))
        let actions = machine.choke(now: WireFixtures.at(2))
        #expect(
            actions == [
                .send(.choke),
                .emit(.requestCancelled(block(0))), .send(.rejectRequest(block(0))),
                .emit(.requestCancelled(block(4))), .send(.rejectRequest(block(4))),
            ])
        #expect(machine.peerRequests == [block(2)])
        let refused = machine.rejectRequest(block(2), now: WireFixtures.at(2))
        #expect(refused == [.send(.rejectRequest(block(2)))])
        #expect(machine.peerRequests.isEmpty)
    }

    @Test func chokingWithoutTheFastExtensionDropsQueuedRequests() {
        var machine = Self.connected(ours: [], theirs: [], first: nil)
        let allowed = machine.allowFast(piece: 2, now: WireFixtures.at(1))
        #expect(allowed.isEmpty, "needs the fast extension")
        let suggested = machine.suggest(piece: 2, now: WireFixtures.at(1))
        #expect(suggested.isEmpty)
        _ = machine.unchoke(now: WireFixtures.at(1))
        _ = machine.received(.request(block(0)), now: WireFixtures.at(1))
        let choked = machine.choke(now: WireFixtures.at(2))
        #expect(choked == [.send(.choke), .emit(.requestCancelled(block(0)))])
        #expect(machine.peerRequests.isEmpty)
        _ = machine.unchoke(now: WireFixtures.at(3))
        _ = machine.received(.request(block(0)), now: WireFixtures.at(3))
        let refused = machine.rejectRequest(block(0), now: WireFixtures.at(3))
        #expect(refused.isEmpty, "no reject message without BEP 6")
        #expect(machine.peerRequests.isEmpty)
    }

    // MARK: Timers

    @Test func sendsKeepAlivesWhenIdle() {
        var machine = Self.connected()
        #expect(machine.nextDeadline == WireFixtures.at(90))
        let tick = machine.timerFired(now: WireFixtures.at(89))
        #expect(tick.isEmpty)
        _ = machine.received(.keepAlive, now: WireFixtures.at(80))
        let tick2 = machine.timerFired(now: WireFixtures.at(90))
        #expect(tick2 == [.send(.keepAlive)])
        #expect(machine.nextDeadline == WireFixtures.at(180), "the keep-alive counts as sending")
        _ = machine.setInterested(true, now: WireFixtures.at(150))
        let tick3 = machine.timerFired(now: WireFixtures.at(200))
        #expect(tick3.isEmpty, "anything sent counts")
    }

    @Test func closesAPeerSilentForThreeMinutes() {
        var machine = Self.connected()
        _ = machine.received(.unchoke, now: WireFixtures.at(10))
        _ = machine.request(block(0), now: WireFixtures.at(10))
        _ = machine.timerFired(now: WireFixtures.at(100))
        let actions = machine.timerFired(now: WireFixtures.at(190))
        #expect(actions == [.emit(.requestsReturned([block(0)])), .close(WireError(.inactivityTimeout))])
        #expect(machine.phase == .closed)
    }

    @Test func reportsSnubbingOnceAndItsEnd() {
        var machine = Self.connected()
        _ = machine.received(.unchoke, now: WireFixtures.at(0))
        let tick = machine.timerFired(now: WireFixtures.at(70))
        #expect(tick.contains(.send(.keepAlive)) == false, "nothing outstanding yet")
        _ = machine.request(block(0), now: WireFixtures.at(70))
        _ = machine.request(block(1), now: WireFixtures.at(75))
        #expect(machine.nextDeadline == WireFixtures.at(130))
        _ = machine.received(.keepAlive, now: WireFixtures.at(120))
        let tick2 = machine.timerFired(now: WireFixtures.at(129))
        #expect(Self.events(tick2).isEmpty)
        let tick3 = machine.timerFired(now: WireFixtures.at(130))
        #expect(Self.events(tick3) == [.snubbed])
        #expect(machine.isSnubbed)
        let tick4 = machine.timerFired(now: WireFixtures.at(135))
        #expect(Self.events(tick4).isEmpty, "reported once")
        let arrival = machine.received(.piece(piece: 0, offset: 0, block: data(block(0))), now: WireFixtures.at(140))
        #expect(Self.events(arrival) == [.blockReceived(block(0), data: data(block(0))), .unsnubbed])
        // The clock restarts at the block: piece 1 is now 60 s late at 200.
        #expect(machine.nextDeadline == WireFixtures.at(165), "the keep-alive is due first")
        _ = machine.received(.keepAlive, now: WireFixtures.at(190))
        let tick5 = machine.timerFired(now: WireFixtures.at(200))
        #expect(Self.events(tick5) == [.snubbed])
    }

    /// The in-place readers (for machines kept in a collection) give the timer due first and what the getters
    /// say, in every phase, and change nothing.
    @Test func inPlaceReadersAgreeWithTheGetters() {
        func check(_ machine: inout Machine, _ label: String, deadline: Instant?) {
            #expect(Machine.nextDeadline(of: &machine) == deadline, "\(label): deadline")
            #expect(machine.nextDeadline == deadline, "\(label): reading changed nothing")
            let interest = Machine.interest(of: &machine)
            #expect(interest.peerInterested == machine.peerInterested, "\(label)")
            #expect(interest.amInterested == machine.amInterested, "\(label)")
            #expect(interest.amChoking == machine.amChoking, "\(label)")
            #expect(interest.peerChoking == machine.peerChoking, "\(label)")
            let queue = Machine.requestQueueState(of: &machine)
            #expect(queue == machine.requestQueueState, "\(label)")
        }
        var waiting = Machine(configuration: Self.configuration(), ourPieces: Self.somePieces, now: WireFixtures.at(0))
        check(&waiting, "awaiting the handshake", deadline: WireFixtures.at(10))
        var machine = Self.connected()
        check(&machine, "connected", deadline: WireFixtures.at(90))
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.received(.interested, now: WireFixtures.at(1))
        _ = machine.setInterested(true, now: WireFixtures.at(1))
        _ = machine.unchoke(now: WireFixtures.at(1))
        _ = machine.request([block(0), block(1)], now: WireFixtures.at(2))
        // The snub timer of the requests sent at 2 comes before the keep-alive (92) and the silence (181).
        check(&machine, "unchoked both ways, requests outstanding", deadline: WireFixtures.at(62))
        _ = machine.cancel(block(1), now: WireFixtures.at(3))
        _ = machine.timerFired(now: WireFixtures.at(70))
        #expect(machine.isSnubbed)
        // Snubbed, the cancelled request dropped: the keep-alive after the cancel sent at 3.
        check(&machine, "snubbed, a request cancelled", deadline: WireFixtures.at(93))
        _ = machine.close(WireError(.inactivityTimeout), now: WireFixtures.at(71))
        check(&machine, "closed", deadline: nil)
    }

    // MARK: Extensions

    @Test func extensionMessages() {
        var machine = Self.connected()
        let first = ExtensionHandshake(messages: ["ut_metadata": 3, "ut_pex": 4], metadataSize: 1000)
        let later = ExtensionHandshake(messages: ["ut_pex": 0])
        _ = machine.received(first.message, now: WireFixtures.at(1))
        let merged = first.merging(later)
        let reply = machine.received(later.message, now: WireFixtures.at(1))
        #expect(Self.events(reply) == [.extensionHandshake(merged)])
        #expect(machine.peerExtensions?.id(for: "ut_pex") == nil)
        let payload = ByteBuffer(bytes: [1, 2, 3])
        let reply2 = machine.received(.extended(id: 1, payload: payload), now: WireFixtures.at(1))
        #expect(
            Self.events(reply2)
                == [.extensionMessage(id: 1, payload: payload)])
        let extended = machine.sendExtended(id: 3, payload: payload, now: WireFixtures.at(1))
        #expect(extended == [.send(.extended(id: 3, payload: payload))])
        let invalid = machine.received(.extended(id: 0, payload: ByteBuffer(bytes: Array("li1ee".utf8))), now: WireFixtures.at(1))
        #expect(Self.closeReason(invalid)?.code == .invalidExtensionHandshake(nil))
    }

    @Test func extendedMessagesWithoutTheExtensionProtocolClose() {
        var machine = Self.connected(ours: [.fastExtension], theirs: Self.allBits)
        let extended = machine.sendExtended(id: 3, payload: ByteBuffer(), now: WireFixtures.at(1))
        #expect(extended.isEmpty)
        let actions = machine.received(.extended(id: 0, payload: ByteBuffer(bytes: Array("de".utf8))), now: WireFixtures.at(1))
        #expect(Self.closeReason(actions)?.code == .extensionProtocolNotNegotiated)
    }

    // MARK: Unknown piece count (a magnet link before its metadata)

    @Test func announcementsWaitForThePieceCount() {
        var machine = Self.connected(ourPieces: nil, first: nil)
        #expect(machine.pieceCount == nil)
        let reply = machine.received(.bitfield(ByteBuffer(bytes: [0b0100_0000, 0])), now: WireFixtures.at(1))
        #expect(reply.isEmpty)
        let reply2 = machine.received(.have(piece: 9), now: WireFixtures.at(1))
        #expect(reply2.isEmpty)
        let reply3 = machine.received(.allowedFast(5000), now: WireFixtures.at(1))
        #expect(reply3 == [.emit(.allowedFast(piece: 5000))])
        #expect(machine.peerPieces == nil)
        _ = machine.unchoke(now: WireFixtures.at(1))
        let reply4 = machine.received(.request(block(1)), now: WireFixtures.at(1))
        #expect(reply4 == [.send(.rejectRequest(block(1)))], "we have nothing")
        var expected = Bitfield(count: 10)
        expected.set(1)
        expected.set(9)
        let resolved = machine.setPieceCount(10, now: WireFixtures.at(2))
        #expect(resolved == [.emit(.peerPieces(expected))])
        #expect(machine.peerPieces == expected)
        #expect(machine.allowedFastFromPeer.isEmpty, "5000 is not a piece")
        let resolved2 = machine.setPieceCount(20, now: WireFixtures.at(2))
        #expect(resolved2.isEmpty, "known already")
        #expect(machine.ourPieces == Bitfield(count: 10))
        let reply5 = machine.received(.have(piece: 2), now: WireFixtures.at(3))
        #expect(Self.events(reply5) == [.peerHas(piece: 2)])
    }

    @Test func pendingAnnouncementsThatDoNotFitThePieceCountClose() {
        var spare = Self.connected(ourPieces: nil, first: .bitfield(ByteBuffer(bytes: [0, 0b0010_0000])))
        let resolved = spare.setPieceCount(10, now: WireFixtures.at(1))
        #expect(Self.closeReason(resolved)?.code == .bitfieldSpareBits)
        var size = Self.connected(ourPieces: nil, first: .bitfield(ByteBuffer(bytes: [0, 0, 0])))
        let resolved2 = size.setPieceCount(10, now: WireFixtures.at(1))
        #expect(Self.closeReason(resolved2)?.code == .wrongLength(expected: 3))
        var have = Self.connected(ourPieces: nil, first: .haveNone)
        _ = have.received(.have(piece: 12), now: WireFixtures.at(1))
        let resolved3 = have.setPieceCount(10, now: WireFixtures.at(1))
        #expect(Self.closeReason(resolved3)?.code == .pieceIndexOutOfRange(12, pieceCount: 10))
        var all = Self.connected(ourPieces: nil, first: .haveAll)
        _ = all.received(.have(piece: 12), now: WireFixtures.at(1))
        let resolved4 = all.setPieceCount(4, now: WireFixtures.at(1))
        #expect(resolved4 == [.emit(.peerPieces(Bitfield(count: 4, allSet: true)))])
        var huge = Self.connected(ourPieces: nil, first: nil)
        let reason = Self.closeReason(huge.received(.have(piece: 1 << 30), now: WireFixtures.at(1)))
        #expect(reason?.code == .pieceIndexOutOfRange(1 << 30, pieceCount: 8 << 20))
    }

    // MARK: Closing

    @Test func closingReturnsOutstandingRequestsAndSilencesTheMachine() {
        var machine = Self.connected()
        _ = machine.received(.unchoke, now: WireFixtures.at(1))
        _ = machine.request(block(1), now: WireFixtures.at(1))
        let reason = WireError(.closedByTorrent("hash failure", ban: true))
        let closing = machine.close(reason, now: WireFixtures.at(2))
        #expect(closing == [.emit(.requestsReturned([block(1)])), .close(reason)])
        #expect(reason.disposition == .ban)
        #expect(machine.closeReason == reason)
        let reply = machine.received(.choke, now: WireFixtures.at(3))
        #expect(reply.isEmpty)
        let tick = machine.timerFired(now: WireFixtures.at(1000))
        #expect(tick.isEmpty)
        let unchoked = machine.unchoke(now: WireFixtures.at(3))
        #expect(unchoked.isEmpty)
        let closing2 = machine.close(reason, now: WireFixtures.at(3))
        #expect(closing2.isEmpty)
        #expect(machine.nextDeadline == nil)

        var lost = Self.connected()
        _ = lost.received(.unchoke, now: WireFixtures.at(1))
        _ = lost.request(block(1), now: WireFixtures.at(1))
        let lost2 = lost.connectionClosed()
        #expect(lost2 == [.emit(.requestsReturned([block(1)]))])
        #expect(lost.phase == .closed)
        #expect(lost.closeReason == nil)
        let lost3 = lost.connectionClosed()
        #expect(lost3.isEmpty)
    }
}
