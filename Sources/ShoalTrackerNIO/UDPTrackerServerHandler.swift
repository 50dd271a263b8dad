import NIOCore
import ShoalTracker

/// The UDP side of `shoal tracker`: each datagram goes through the BEP 15 server core (under the
/// tracker's lock, with the registry), and its answer goes back to its source. Answers of one read
/// batch (recvmmsg) are flushed together (sendmmsg). When the socket cannot take more, answers are
/// dropped, as UDP may: a flood never makes the server buffer without bound.
final class UDPTrackerServerHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop (NIO's guarantee for a handler).
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let tracker: TrackerServer
    /// The answer being built, reused for every datagram.
    private var reply: [UInt8] = []
    private var unflushed = false

    init(tracker: TrackerServer) {
        self.tracker = tracker
        reply.reserveCapacity(4096)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = TrackerHost(socketAddress: envelope.remoteAddress) else { return }
        reply.removeAll(keepingCapacity: true)
        let answered = envelope.data.withUnsafeReadableBytes { packet in
            tracker.handleDatagram(packet, from: source, reply: &reply)
        }
        guard answered, context.channel.isWritable else { return }
        var buffer = context.channel.allocator.buffer(capacity: reply.count)
        buffer.writeBytes(reply)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)), promise: nil)
        unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A send to an unreachable client (ICMP) or a transient error: never close the tracker's socket.
    }
}
