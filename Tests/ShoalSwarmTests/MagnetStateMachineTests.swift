import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

/// The magnet core against one peer played by a wire state machine.
@Suite("Magnet state machine")
struct MagnetStateMachineTests {
    static let content = MagnetSwarmTests.content
    static var info: [UInt8] { content.metainfo.infoBytes }

    static func magnet(peerExchange: Bool = true) -> MagnetStateMachine {
        var random = SeededGenerator(seed: 3)
        return MagnetStateMachine(
            configuration: .init(
                infoHashes: content.magnetLink.infoHashes, peerID: PeerID.shoal(using: &random),
                peerExchange: peerExchange, listenPort: 6881))
    }

    /// A peer that has the metadata: it advertises `ut_metadata` with the size, and listens on 7000.
    static let seedExtensions = ExtensionHandshake(messages: ["ut_metadata": 3], listenPort: 7000, metadataSize: info.count)

    /// The `ut_metadata` requests the peer received, in order.
    static func requests(in events: [PeerEvent]) -> [Int] {
        events.compactMap { event in
            guard case .extensionMessage(3, let payload) = event, case .request(let piece)? = try? MetadataMessage.decode(payload)
            else { return nil }
            return piece
        }
    }

    @Test func asksAPeerThatHasTheMetadataAndRejectsItsRequests() throws {
        var link = try WireLink(Self.magnet(), extensions: Self.seedExtensions)
        #expect(Self.requests(in: link.heard) == [0, 1, 2, 3], "four requests outstanding to one peer")
        let ours = try #require(link.peer.machine.peerExtensions)
        #expect(ours.id(for: "ut_metadata") != nil && ours.metadataSize == nil, "advertised without a size")
        #expect(ours.listenPort == 6881)
        #expect(try link.askMetadata(.request(piece: 0)) == .reject(piece: 0), "BEP 9: no metadata, reject")
    }

    @Test func completesWithTheCheckedMetadataClosingEveryConnection() throws {
        var link = try WireLink(Self.magnet(), extensions: Self.seedExtensions)
        var answered = Set<Int>()
        var last: [MagnetStateMachine.Action] = []
        // Answer every request, as they come, until the core is done.
        var pending = Self.requests(in: link.heard)
        while let piece = pending.first, !link.engine.isFinished {
            pending.removeFirst()
            guard answered.insert(piece).inserted else { continue }
            let start = piece * 16384
            let block = Array(Self.info[start..<min(Self.info.count, start + 16384)])
            let message = MetadataMessage.data(piece: piece, totalSize: Self.info.count, block: ByteBuffer(bytes: block))
            let before = link.heard.count
            last = link.send(message.message(id: ExtensionHandshake.metadataMessageID))
            pending += Self.requests(in: Array(link.heard[before...]))
        }
        #expect(answered.count == 7)
        #expect(last == [.close(link.key), .metadata(Self.info, peers: [PeerAddress("10.1.2.3:7000")!])])
        #expect(link.engine.isFinished)
        var bytes = ByteBuffer(bytes: [0, 0, 0, 0])
        #expect(link.engine.received(&bytes, from: link.key, now: .zero + .seconds(11)).isEmpty, "finished: silent")
    }

    @Test func malformedMetadataAndWrongSizesCostThePeerItsConnection() throws {
        var garbage = try WireLink(Self.magnet(), extensions: Self.seedExtensions)
        let actions = garbage.send(.extended(id: ExtensionHandshake.metadataMessageID, payload: ByteBuffer(string: "d8:msg_type")))
        #expect(actions.contains(.close(garbage.key)))

        var liar = try WireLink(Self.magnet(), extensions: Self.seedExtensions)
        let wrong = MetadataMessage.data(piece: 0, totalSize: 20000, block: ByteBuffer(repeating: 1, count: 16384))
        #expect(liar.send(wrong.message(id: ExtensionHandshake.metadataMessageID)).contains(.close(liar.key)))

        var pex = try WireLink(Self.magnet(), extensions: Self.seedExtensions)
        let broken = pex.send(.extended(id: ExtensionHandshake.peerExchangeMessageID, payload: ByteBuffer(string: "d5:added5:abcdee")))
        #expect(broken.contains(.close(pex.key)))
    }

    @Test func aPeerOfAnotherTorrentIsRefused() throws {
        let link = try WireLink(Self.magnet(), infoHash: Digest20(bytes: Array(repeating: 9, count: 20))!)
        #expect(link.lastActions.contains(.close(link.key)))
        #expect(link.engine.connectedPeers == 0)
    }

    @Test func addressesFromPEXAreDialledWhileFetching() throws {
        var link = try WireLink(Self.magnet(), extensions: Self.seedExtensions)
        let learned = PeerAddress("10.9.9.9:6881")!
        let message = PeerExchangeMessage(added: [.init(learned, flags: .reachable)])
        let actions = link.send(.extended(id: ExtensionHandshake.peerExchangeMessageID, payload: ByteBuffer(bytes: message.encoded)))
        #expect(actions.contains { if case .connect(_, learned) = $0 { true } else { false } })
        #expect(link.peer.machine.peerExtensions?.id(for: PeerExchangeMessage.extensionName) != nil)
    }

    /// `shoal get MAGNET --no-pex`: the metadata phase neither offers PEX nor dials what a peer sends anyway.
    @Test func withoutPeerExchangeNothingIsOfferedOrDialled() throws {
        var link = try WireLink(Self.magnet(peerExchange: false), extensions: Self.seedExtensions)
        let ours = try #require(link.peer.machine.peerExtensions)
        #expect(ours.id(for: PeerExchangeMessage.extensionName) == nil, "ut_pex not advertised")
        let message = PeerExchangeMessage(added: [.init(PeerAddress("10.9.9.9:6881")!, flags: .reachable)])
        let actions = link.send(.extended(id: ExtensionHandshake.peerExchangeMessageID, payload: ByteBuffer(bytes: message.encoded)))
        #expect(!actions.contains { if case .connect = $0 { true } else { false } }, "\(actions)")
        #expect(!actions.contains(.close(link.key)), "an unoffered message is ignored, not punished")
    }
}
