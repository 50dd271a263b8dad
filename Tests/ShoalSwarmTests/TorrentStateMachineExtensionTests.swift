import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

/// The torrent core's BEP 10 extensions, against a peer played by a wire state machine.
@Suite("Torrent state machine: ut_metadata and ut_pex")
struct TorrentStateMachineExtensionTests {
    static let content = MagnetSwarmTests.content
    static let now = WireLink<TorrentStateMachine>.now

    static func torrent(isPrivate: Bool = false, peerExchange: Bool = true) -> TorrentStateMachine {
        var random = SeededGenerator(seed: 5)
        let metainfo = content.metainfo
        return TorrentStateMachine(
            configuration: .init(
                infoHash: metainfo.infoHashV1!, peerID: PeerID.shoal(using: &random),
                geometry: content.geometry, pieceHashes: metainfo.info.pieceHashes, infoBytes: metainfo.infoBytes,
                isPrivate: isPrivate, peerExchange: peerExchange, listenPort: 6881),
            have: Bitfield(count: content.geometry.pieceCount, allSet: true))
    }

    @Test func advertisesBothExtensionsWithTheMetadataSizeAndOurPort() throws {
        let link = try WireLink(Self.torrent())
        let theirs = try #require(link.peer.machine.peerExtensions)
        #expect(theirs.id(for: "ut_metadata") == ExtensionHandshake.metadataMessageID)
        #expect(theirs.id(for: "ut_pex") == ExtensionHandshake.peerExchangeMessageID)
        #expect(theirs.metadataSize == Self.content.metainfo.infoBytes.count)
        #expect(theirs.listenPort == 6881)
    }

    @Test func servesEveryPieceOfTheInfoDictionaryAndRejectsOthers() throws {
        var link = try WireLink(Self.torrent())
        let info = Self.content.metainfo.infoBytes
        var assembled: [UInt8] = []
        for piece in 0..<MetadataMessage.pieceCount(totalSize: info.count) {
            let answer = try link.askMetadata(.request(piece: piece))
            guard case .data(piece, info.count, let block)? = answer else {
                Issue.record("piece \(piece): \(String(describing: answer))")
                return
            }
            assembled += Array(block.readableBytesView)
        }
        #expect(assembled == info)
        #expect(try link.askMetadata(.request(piece: 7)) == .reject(piece: 7))
        #expect(link.engine.metadataPiecesServed == 7)
        // Data and rejects from the peer are not answered.
        #expect(try link.askMetadata(.reject(piece: 0)) == nil)
    }

    @Test func rejectsAPeerThatAsksTooOften() throws {
        var link = try WireLink(Self.torrent())
        let allowed = TorrentStateMachine.metadataRequestFactor * 7 + 8
        for _ in 0..<allowed {
            guard case .data? = try link.askMetadata(.request(piece: 0)) else {
                Issue.record("a request within the allowance was not served")
                return
            }
        }
        #expect(try link.askMetadata(.request(piece: 0)) == .reject(piece: 0))
    }

    @Test func aPrivateTorrentAdvertisesNeitherAndRejectsRequests() throws {
        var link = try WireLink(Self.torrent(isPrivate: true))
        let theirs = try #require(link.peer.machine.peerExtensions)
        #expect(theirs.id(for: "ut_metadata") == nil && theirs.id(for: "ut_pex") == nil && theirs.metadataSize == nil)
        #expect(try link.askMetadata(.request(piece: 0), id: ExtensionHandshake.metadataMessageID) == .reject(piece: 0))
        #expect(link.engine.metadataPiecesServed == 0)
    }

    @Test func malformedExtensionMessagesCostThePeerItsConnection() throws {
        for id in [ExtensionHandshake.metadataMessageID, ExtensionHandshake.peerExchangeMessageID] {
            var link = try WireLink(Self.torrent())
            let actions = link.send(.extended(id: id, payload: ByteBuffer(string: "d5:addedi1ee8:msg_type")))
            #expect(actions.contains(.close(link.key)), "id \(id)")
            #expect(!actions.contains { if case .ban = $0 { true } else { false } })
        }
    }

    @Test func addressesFromPEXAreDialled() throws {
        var link = try WireLink(Self.torrent())
        let learned = [PeerAddress("10.9.9.1:6881")!, PeerAddress("[2001:db8::7]:6882")!]
        let message = PeerExchangeMessage(added: learned.map { .init($0, flags: .reachable) })
        let actions = link.send(.extended(id: ExtensionHandshake.peerExchangeMessageID, payload: ByteBuffer(bytes: message.encoded)))
        let dialled = actions.compactMap { if case .connect(_, let address) = $0 { address } else { nil } }
        #expect(Set(dialled) == Set(learned))
    }

    @Test func aConnectionToOurselvesForgetsTheAddressButBansNoHost() throws {
        var torrent = Self.torrent()
        let own = PeerAddress("127.0.0.1:6881")!
        let neighbour = PeerAddress("127.0.0.1:6882")!
        let dial = torrent.addPeers([own], source: .pex, now: Self.now)
        guard case .connect(let key, own)? = dial.first else {
            Issue.record("no dial: \(dial)")
            return
        }
        var sent = torrent.connectionEstablished(key, now: Self.now)
        guard case .send(_, var handshake)? = sent.first else {
            Issue.record("no handshake: \(sent)")
            return
        }
        // Our own handshake comes back: it is us.
        sent = torrent.received(&handshake, from: key, now: Self.now)
        #expect(sent.contains(.close(key)))
        #expect(!sent.contains { if case .ban = $0 { true } else { false } })
        #expect(torrent.planner.isBanned(own))
        #expect(!torrent.planner.isBanned(neighbour), "the host, ours, is not banned")
        #expect(torrent.addPeers([own], source: .tracker, now: Self.now + .seconds(3600)).isEmpty)
        #expect(torrent.addPeers([neighbour], source: .tracker, now: Self.now).contains { if case .connect = $0 { true } else { false } })
    }
}
