import NIOCore
import ShoalCore
import ShoalWire
import Testing

@testable import ShoalSwarm

@Suite("ActionSink")
struct ActionSinkTests {
    private func request(_ piece: UInt32, _ offset: UInt32 = 0) -> BlockRequest {
        BlockRequest(piece: piece, offset: offset, length: 16384)
    }

    /// The bytes of the `send` actions and the other actions, in order.
    private enum Item: Equatable {
        case bytes(PeerKey, [UInt8])
        case other(TorrentAction)
    }

    private func items(_ actions: [TorrentAction]) -> [Item] {
        actions.map { action in
            if case .send(let key, let buffer) = action { return .bytes(key, Array(buffer.readableBytesView)) }
            return .other(action)
        }
    }

    private func encoding(_ messages: PeerMessage...) -> [UInt8] {
        messages.flatMap { Array($0.encoded.readableBytesView) }
    }

    @Test func messagesToOnePeerInARowLeaveAsOneSend() {
        var sink = ActionSink()
        sink.send(.interested, to: 1)
        sink.send(.request(request(0)), to: 1)
        sink.send(.request(request(0, 16384)), to: 1)
        #expect(items(sink.finish()) == [.bytes(1, encoding(.interested, .request(request(0)), .request(request(0, 16384))))])
    }

    @Test func anotherPeerOrAnotherActionEndsTheSendAndOrderIsKept() {
        var sink = ActionSink()
        sink.send(.request(request(0)), to: 1)
        sink.send(.request(request(1)), to: 2)
        sink.send(.request(request(2)), to: 1)
        sink.append(.read(1, Block(piece: 3, offset: 0, length: 16384)))
        sink.send(.have(piece: 4), to: 1)
        sink.append(.close(2))
        #expect(
            items(sink.finish()) == [
                .bytes(1, encoding(.request(request(0)))), .bytes(2, encoding(.request(request(1)))),
                .bytes(1, encoding(.request(request(2)))), .other(.read(1, Block(piece: 3, offset: 0, length: 16384))),
                .bytes(1, encoding(.have(piece: 4))), .other(.close(2)),
            ])
    }

    @Test func aBlockFollowsItsHeaderFromItsOwnBuffer() {
        let block = ByteBuffer(bytes: (0..<100).map { UInt8($0) })
        let piece = PeerMessage.piece(piece: 7, offset: 32768, block: block)
        var sink = ActionSink()
        sink.send(.have(piece: 1), to: 1)
        sink.send(piece, to: 1)
        sink.send(.have(piece: 2), to: 1)
        let actions = sink.finish()
        // Header after the message before it; then the block; then a new buffer.
        let wire = encoding(.have(piece: 1), piece, .have(piece: 2))
        let header = wire.count - 100 - PeerMessage.have(piece: 2).encodedLength
        #expect(
            items(actions) == [
                .bytes(1, Array(wire[..<header])), .bytes(1, Array(wire[header..<(header + 100)])),
                .bytes(1, encoding(.have(piece: 2))),
            ])
        guard actions.count == 3, case .send(_, let sent) = actions[1] else {
            Issue.record("no block")
            return
        }
        let sentAddress = sent.withUnsafeReadableBytes { $0.baseAddress }
        let blockAddress = block.withUnsafeReadableBytes { $0.baseAddress }
        #expect(sentAddress == blockAddress, "the block was copied")
    }

    @Test func aHandshakeAndWhatFollowsItShareABuffer() throws {
        let infoHash = try #require(Digest20(bytes: [UInt8](repeating: 1, count: 20)))
        let peerID = try #require(PeerID(bytes: [UInt8](repeating: 2, count: 20)))
        let handshake = Handshake(reserved: [.fastExtension], infoHash: infoHash, peerID: peerID)
        var sink = ActionSink()
        sink.sendHandshake(handshake, to: 3)
        sink.send(.haveAll, to: 3)
        var expected = ByteBuffer()
        handshake.write(to: &expected)
        PeerMessage.haveAll.write(to: &expected)
        #expect(items(sink.finish()) == [.bytes(3, Array(expected.readableBytesView))])
    }

    @Test func nothingCollectedIsNoAction() {
        var sink = ActionSink()
        #expect(sink.finish().isEmpty)
    }
}
