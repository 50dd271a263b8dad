import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

/// A core that takes a connection's bytes: the torrent core or the magnet core.
protocol LinkedEngine {
    associatedtype Action
    /// The info-hash its handshakes carry.
    var wireInfoHash: Digest20 { get }
    mutating func accept(from address: PeerAddress, now: Instant) -> PeerKey?
    mutating func receive(_ bytes: inout ByteBuffer, from key: PeerKey, now: Instant) -> [Action]
    /// The bytes an action sends to `key`, if it sends to it.
    static func bytes(of action: Action, to key: PeerKey) -> ByteBuffer?
}

extension TorrentStateMachine: LinkedEngine {
    var wireInfoHash: Digest20 { configuration.infoHash }
    mutating func accept(from address: PeerAddress, now: Instant) -> PeerKey? { accepted(from: address, now: now) }
    mutating func receive(_ bytes: inout ByteBuffer, from key: PeerKey, now: Instant) -> [TorrentAction] {
        received(&bytes, from: key, now: now)
    }
    static func bytes(of action: TorrentAction, to key: PeerKey) -> ByteBuffer? {
        if case .send(key, let bytes) = action { return bytes }
        return nil
    }
}

extension MagnetStateMachine: LinkedEngine {
    var wireInfoHash: Digest20 { configuration.wireInfoHash }
    mutating func accept(from address: PeerAddress, now: Instant) -> PeerKey? { accepted(from: address, now: now) }
    mutating func receive(_ bytes: inout ByteBuffer, from key: PeerKey, now: Instant) -> [Action] {
        received(&bytes, from: key, now: now)
    }
    static func bytes(of action: Action, to key: PeerKey) -> ByteBuffer? {
        if case .send(key, let bytes) = action { return bytes }
        return nil
    }
}

/// A core and a peer that dialled it (a wire state machine with a decoder), connected through their bytes.
struct WireLink<Engine: LinkedEngine> {
    struct Peer {
        var machine: PeerConnection.StateMachine
        var decoder = PeerMessageDecoder(pieceCount: nil)
        var inbound = ByteBuffer()
        var handshaken = false
    }

    static var now: Instant { Instant.zero + .seconds(10) }
    static var peerAddress: PeerAddress { PeerAddress("10.1.2.3:51413")! }
    /// The id under which the peer receives `ut_metadata`.
    static var peerMetadataID: UInt8 { 3 }

    var engine: Engine
    var peer: Peer
    let key: PeerKey
    /// Every event the peer's machine emitted so far.
    private(set) var heard: [PeerEvent] = []

    /// The peer connects to `engine` with this extension handshake (by default `ut_metadata` 3, `ut_pex` 4).
    init(_ engine: Engine, extensions: ExtensionHandshake? = nil, infoHash: Digest20? = nil) throws {
        var engine = engine
        let accepted = engine.accept(from: Self.peerAddress, now: Self.now)
        self.engine = engine
        key = try #require(accepted)
        var random = SeededGenerator(seed: 77)
        peer = Peer(
            machine: PeerConnection.StateMachine(
                configuration: .init(
                    infoHash: infoHash ?? engine.wireInfoHash, peerID: PeerID.shoal(using: &random),
                    extensionHandshake: extensions
                        ?? ExtensionHandshake(messages: ["ut_metadata": Self.peerMetadataID, "ut_pex": 4])),
                ourPieces: nil, now: Self.now))
        lastActions = deliver(peer.machine.start(now: Self.now))
    }

    /// The core's actions in answer to the peer's last message (or its handshake).
    private(set) var lastActions: [Engine.Action] = []

    /// Sends a message from the peer; returns the core's actions (its answers already delivered).
    mutating func send(_ message: PeerMessage) -> [Engine.Action] {
        deliver([.send(message)])
    }

    /// Sends a `ut_metadata` message under the core's id (or `id`); returns the core's answer.
    mutating func askMetadata(_ message: MetadataMessage, id: UInt8? = nil) throws -> MetadataMessage? {
        let id = id ?? peer.machine.peerExtensions?.id(for: "ut_metadata") ?? 0
        var answer: MetadataMessage?
        for event in events(after: [.send(message.message(id: id))]) {
            if case .extensionMessage(Self.peerMetadataID, let payload) = event { answer = try MetadataMessage.decode(payload) }
        }
        return answer
    }

    /// Everything the peer heard from the core (its events) after sending `actions`.
    mutating func events(after actions: [PeerAction]) -> [PeerEvent] {
        let before = heard.count
        _ = deliver(actions)
        return Array(heard[before...])
    }

    /// Carries the peer's actions to the core and the core's bytes back, until both are quiet.
    private mutating func deliver(_ actions: [PeerAction]) -> [Engine.Action] {
        let now = Self.now
        var outgoing = ByteBuffer()
        for action in actions {
            switch action {
            case .sendHandshake(let handshake): handshake.write(to: &outgoing)
            case .send(let message): message.write(to: &outgoing)
            case .emit(let event): heard.append(event)
            case .close: break
            }
        }
        guard outgoing.readableBytes > 0 else { return [] }
        let engineActions = engine.receive(&outgoing, from: key, now: now)
        for action in engineActions {
            guard var bytes = Engine.bytes(of: action, to: key) else { continue }
            peer.inbound.writeBuffer(&bytes)
            var answers: [PeerAction] = []
            while true {
                if !peer.handshaken {
                    guard let handshake = try? Handshake.decode(from: &peer.inbound) else { break }
                    peer.handshaken = true
                    answers += peer.machine.receivedHandshake(handshake, now: now)
                } else {
                    guard let message = try? peer.decoder.next(from: &peer.inbound) else { break }
                    answers += peer.machine.received(message, now: now)
                }
            }
            _ = deliver(answers)
        }
        return engineActions
    }
}
