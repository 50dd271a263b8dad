import NIOCore
import ShoalCore
import ShoalTracker

/// The UDP side of `shoal tracker`: each datagram goes through the BEP 15 server core (under the
/// tracker's lock, with the registry), and its answer goes back to its source. Answers of one read
/// batch (recvmmsg) are written into one buffer and, at the batch's end, sent as slices of it and flushed
/// together (sendmmsg): one allocation per batch instead of two per answer. When the socket cannot take more, answers are
/// dropped, as UDP may: a flood never makes the server buffer without bound.
final class UDPTrackerServerHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop (NIO's guarantee for a handler).
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let tracker: TrackerServer
    // The mutable state is `@exclusivity(unchecked)`: the handler runs on one event loop and never re-enters
    // itself, so the runtime's access tracking on these (a thread-local set, 2% of the tracker's time) only costs.
    /// The answer being built, reused for every datagram.
    @exclusivity(unchecked) private var reply: [UInt8] = []
    /// The answers of the current batch; a new one for each batch (the slices sent keep the old alive
    /// until they are written, so writing into it again would copy it).
    @exclusivity(unchecked) private var batch: ByteBuffer?
    /// When the batch was read: one clock reading serves all its datagrams.
    @exclusivity(unchecked) private var batchTime: Instant?
    /// Each answer of the batch: where it goes, and its bytes in `batch`.
    @exclusivity(unchecked) private var answers: [(to: SocketAddress, start: Int, count: Int)] = []

    /// Room for about 64 answers of 50 IPv4 peers (a batch is at most 64 datagrams), under glibc's
    /// 128 KiB mmap threshold.
    static let batchCapacity = 64 * 320

    init(tracker: TrackerServer) {
        self.tracker = tracker
        reply.reserveCapacity(4096)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = TrackerHost(socketAddress: envelope.remoteAddress) else { return }
        reply.removeAll(keepingCapacity: true)
        let now = batchTime ?? TrackerClock.now()
        batchTime = now
        let answered = envelope.data.withUnsafeReadableBytes { packet in
            tracker.handleDatagram(packet, from: source, now: now, reply: &reply)
        }
        guard answered else { return }
        if batch == nil { batch = context.channel.allocator.buffer(capacity: max(Self.batchCapacity, reply.count)) }
        answers.append((envelope.remoteAddress, batch!.writerIndex, reply.count))
        batch!.writeBytes(reply)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        batchTime = nil
        guard let batch else { return }
        self.batch = nil
        defer { answers.removeAll(keepingCapacity: true) }
        guard context.channel.isWritable else { return }
        for answer in answers {
            let bytes = batch.getSlice(at: answer.start, length: answer.count)!
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: answer.to, data: bytes)), promise: nil)
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A send to an unreachable client (ICMP) or a transient error: never close the tracker's socket.
    }
}
