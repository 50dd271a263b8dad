import NIOCore
import NIOPosix
import ShoalCore
import ShoalWire
import Synchronization

/// What a hostile peer's script asks of its connection: bytes to write, then perhaps a close.
struct HostileOutput {
    private(set) var writes: [ByteBuffer] = []
    private(set) var closes = false
    private(set) var stopsReading = false

    /// Sends a message, encoded as it should be (its contents may still be lies).
    mutating func send(_ message: PeerMessage) { writes.append(message.encoded) }

    /// Sends raw bytes: broken framing, a cut message.
    mutating func send(raw bytes: [UInt8]) { writes.append(ByteBuffer(bytes: bytes)) }

    /// Closes the connection once everything written so far has gone out.
    mutating func close() { closes = true }

    /// Stops reading from the socket (until ``HostilePeer/resumeReading()``): what the victim sends piles up.
    mutating func stopReading() { stopsReading = true }
}

/// How a hostile peer plays one connection, after the handshakes: the rules it keeps and the ones it breaks.
/// A new script runs each connection, on the connection's event loop.
protocol HostileScript {
    /// The victim's handshake has arrived, and ours is sent.
    mutating func handshaken(_ output: inout HostileOutput)
    /// A message from the victim.
    mutating func received(_ message: PeerMessage, _ output: inout HostileOutput)
}

/// A scripted peer on loopback that breaks the peer wire protocol on purpose, to attack a Shoal runtime:
/// it listens for the victim to dial it (``listening(handshake:pieceCount:script:)``), or dials the
/// victim's listener (``dialling(handshake:pieceCount:keepsBlocks:script:)`` then ``dial(_:)``).
///
/// It speaks through SwiftNIO on an event loop of its own: it sends its handshake (first when it dials,
/// as soon as the victim's arrives when it listens), decodes the victim's handshake and messages with
/// ShoalWire's decoder, and hands each message to its ``HostileScript``. It records every connection:
/// the victim's handshake, every message, who closed it and when (``connections``).
final class HostilePeer: Sendable {
    enum Closer: Sendable, Hashable {
        /// The hostile peer closed it (its script asked to).
        case hostile
        /// The victim closed it (or reset it).
        case victim
    }

    /// One connection, as the hostile peer saw it.
    struct Connection: Sendable {
        var victimHandshake: Handshake?
        /// The victim's messages after its handshake, in order (without `piece` messages when the peer
        /// does not keep blocks).
        var messages: [PeerMessage] = []
        /// The bytes of every block the victim sent.
        var blockBytes = 0
        var closedBy: Closer?
        var closedAt: ContinuousClock.Instant?
        /// The bytes the hostile peer has written that the socket took.
        var bytesWritten = 0
        /// Bytes from the victim that did not decode (the victim broke the protocol).
        var decodeError: WireError?

        var isOpen: Bool { closedBy == nil }

        var requests: [BlockRequest] {
            messages.compactMap { if case .request(let block) = $0 { block } else { nil } }
        }

        var rejects: [BlockRequest] {
            messages.compactMap { if case .rejectRequest(let block) = $0 { block } else { nil } }
        }

        var blocks: [(block: Block, data: [UInt8])] {
            messages.compactMap { message in
                guard case .piece(let piece, let offset, let data) = message else { return nil }
                return (
                    Block(piece: Int(piece), offset: Int(offset), length: data.readableBytes),
                    Array(data.readableBytesView)
                )
            }
        }
    }

    /// The handshake this peer sends.
    let handshake: Handshake
    private let pieceCount: Int
    private let keepsBlocks: Bool
    private let makeScript: @Sendable () -> any HostileScript
    private let group: MultiThreadedEventLoopGroup
    private let server = Mutex<(any Channel)?>(nil)
    private let log = Mutex<[Connection]>([])
    private let channels = Mutex<[any Channel]>([])

    private init(
        handshake: Handshake, pieceCount: Int, keepsBlocks: Bool,
        script: @escaping @Sendable () -> any HostileScript
    ) {
        self.handshake = handshake
        self.pieceCount = pieceCount
        self.keepsBlocks = keepsBlocks
        self.makeScript = script
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// The loopback host hostile peers use: bans are of a whole IP address, so on Linux (where all of
    /// 127/8 is loopback) the attacker has a host of its own and a ban of it leaves honest local peers alone.
    #if os(Linux)
    static let host = "127.0.0.2"
    #else
    static let host = "127.0.0.1"
    #endif

    /// A hostile peer listening on ``host`` (a free port) for victims to dial it.
    static func listening(
        handshake: Handshake, pieceCount: Int, script: @escaping @Sendable () -> any HostileScript
    ) async throws -> HostilePeer {
        let peer = HostilePeer(handshake: handshake, pieceCount: pieceCount, keepsBlocks: true, script: script)
        do {
            let channel = try await ServerBootstrap(group: peer.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(peer.makeHandler(for: channel, initiator: false))
                    }
                }
                .bind(host: Self.host, port: 0).get()
            peer.server.withLock { $0 = channel }
        } catch {
            try? await peer.group.shutdownGracefully()
            throw error
        }
        return peer
    }

    /// A hostile peer that dials its victims (``dial(_:)``). Without `keepsBlocks` the blocks it receives
    /// are only counted (``Connection/blockBytes``), not kept.
    static func dialling(
        handshake: Handshake, pieceCount: Int, keepsBlocks: Bool = true,
        script: @escaping @Sendable () -> any HostileScript
    ) -> HostilePeer {
        HostilePeer(handshake: handshake, pieceCount: pieceCount, keepsBlocks: keepsBlocks, script: script)
    }

    /// The listening address (IPv4 loopback).
    var address: PeerAddress {
        let port = server.withLock { $0?.localAddress?.port } ?? 0
        return PeerAddress("\(Self.host):\(port)")!
    }

    /// Opens a new connection to `address`, which then plays its script; from the address `source` when
    /// given (any port).
    func dial(_ address: PeerAddress, from source: String? = nil) async throws {
        let socket = try SocketAddress(ipAddress: address.hostText, port: Int(address.port))
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(self.makeHandler(for: channel, initiator: true))
                }
            }
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        _ = try await bootstrap.connect(to: socket).get()
    }

    /// Every connection so far, in the order they opened.
    var connections: [Connection] { log.withLock { $0 } }

    /// Sends messages on connection `index`, outside its script.
    func send(_ messages: [PeerMessage], on index: Int) async throws {
        var buffer = ByteBuffer()
        for message in messages { message.write(to: &buffer) }
        let channel = channels.withLock { $0[index] }
        try await channel.writeAndFlush(buffer)
    }

    /// Reads again from every connection that stopped reading.
    func resumeReading() async throws {
        for channel in channels.withLock({ $0 }) where channel.isActive {
            try await channel.setOption(.autoRead, value: true).get()
        }
    }

    /// Closes the listener and every connection, and stops the event loop.
    func shutdown() async {
        let channel = server.withLock { $0 }
        try? await channel?.close()
        try? await group.shutdownGracefully()
    }

    // MARK: - Connections

    fileprivate func makeHandler(for channel: any Channel, initiator: Bool) -> HostileHandler {
        let index = log.withLock { log in
            log.append(Connection())
            return log.count - 1
        }
        channels.withLock { $0.append(channel) }
        return HostileHandler(
            peer: self, index: index, initiator: initiator, script: makeScript(), pieceCount: pieceCount,
            keepsBlocks: keepsBlocks)
    }

    fileprivate func update(_ index: Int, _ body: (inout Connection) -> Void) {
        log.withLock { body(&$0[index]) }
    }
}

/// One connection of a ``HostilePeer``: decodes what the victim sends and carries out the script's answers.
private final class HostileHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: HostilePeer
    private let index: Int
    private let initiator: Bool
    private let keepsBlocks: Bool
    private var script: any HostileScript
    private var decoder: PeerMessageDecoder
    private var inbound = ByteBuffer()
    private var handshaken = false
    private var closing = false

    init(
        peer: HostilePeer, index: Int, initiator: Bool, script: any HostileScript, pieceCount: Int, keepsBlocks: Bool
    ) {
        self.peer = peer
        self.index = index
        self.initiator = initiator
        self.keepsBlocks = keepsBlocks
        self.script = script
        self.decoder = PeerMessageDecoder(pieceCount: pieceCount)
    }

    func channelActive(context: ChannelHandlerContext) {
        if initiator {
            var buffer = ByteBuffer()
            peer.handshake.write(to: &buffer)
            write(buffer, context: context)
            context.flush()
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        var output = HostileOutput()
        do throws(WireError) {
            if !handshaken {
                guard let handshake = try Handshake.decode(from: &inbound) else { return }
                handshaken = true
                peer.update(index) { $0.victimHandshake = handshake }
                if !initiator {
                    var buffer = ByteBuffer()
                    peer.handshake.write(to: &buffer)
                    output.send(raw: Array(buffer.readableBytesView))
                }
                script.handshaken(&output)
            }
            while !output.closes, let message = try decoder.next(from: &inbound) {
                let keep = keepsBlocks
                peer.update(index) { connection in
                    guard case .piece(_, _, let block) = message else { return connection.messages.append(message) }
                    connection.blockBytes += block.readableBytes
                    if keep { connection.messages.append(message) }
                }
                script.received(message, &output)
            }
        } catch {
            peer.update(index) { $0.decodeError = error }
            output.close()
        }
        inbound.discardReadBytes()
        perform(output, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let closer: HostilePeer.Closer = closing ? .hostile : .victim
        let now = ContinuousClock.now
        peer.update(index) { connection in
            connection.closedBy = closer
            connection.closedAt = now
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset by the victim: channelInactive follows and records it.
        context.close(promise: nil)
    }

    private func perform(_ output: HostileOutput, context: ChannelHandlerContext) {
        for buffer in output.writes { write(buffer, context: context) }
        if output.stopsReading { try? context.channel.syncOptions?.setOption(.autoRead, value: false) }
        guard output.closes else {
            if !output.writes.isEmpty { context.flush() }
            return
        }
        closing = true
        let channel = context.channel
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    private func write(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        let count = buffer.readableBytes
        let peer = self.peer
        let index = self.index
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenSuccess { peer.update(index) { $0.bytesWritten += count } }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}
