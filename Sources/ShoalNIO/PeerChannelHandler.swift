import NIOCore
import ShoalSwarm

/// The channel handler of one peer connection: hands every byte to the torrent's runtime and tells it
/// when the connection ends. It decides nothing; the torrent state machine does.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let runtime: TorrentRuntime
    private let key: PeerKey
    /// Set while the handler is in its pipeline.
    private var context: ChannelHandlerContext?

    init(runtime: TorrentRuntime, key: PeerKey) {
        self.runtime = runtime
        self.key = key
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes bytes for the runtime (on the event loop), from this handler towards the socket. `Channel.write`,
    /// generic and called on an existential, went through the whole pipeline at about 700 more instructions
    /// per write (two per block sent).
    func write(_ bytes: ByteBuffer) {
        context?.write(NIOAny(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Runs `body` on the event loop once everything written before now has gone to the socket (an empty write
    /// whose promise completes in order after them), or the connection failed.
    func whenWritten(_ body: @escaping @Sendable () -> Void) {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in body() }
        context.write(NIOAny(ByteBuffer()), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        runtime.received(&bytes, from: key)
    }

    /// Back-pressure: while the peer does not take what we send (the channel's write buffer is above its
    /// high-water mark), its further requests are not read, so it cannot make us buffer without bound.
    /// (The runtime also pauses reading while the disk is behind; it combines both.)
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        runtime.updateReading(context.channel)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        runtime.closed(key)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or a broken pipe ends the connection; the state machine learns of it through channelInactive.
        context.close(promise: nil)
    }
}
