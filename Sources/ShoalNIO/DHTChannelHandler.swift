import NIOCore
import ShoalCore
import ShoalDHT

/// Hands each datagram to the runtime: the bytes and the sender's address, nothing else.
final class DHTChannelHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let runtime: DHTRuntime

    init(runtime: DHTRuntime) { self.runtime = runtime }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = PeerAddress(socketAddress: envelope.remoteAddress) else { return }
        runtime.received(Array(envelope.data.readableBytesView), from: NodeAddress(source))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP unreachable and the like surface here: a UDP socket carries on.
    }
}
