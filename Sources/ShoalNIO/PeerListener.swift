import NIOCore
import NIOPosix

/// The listening socket: every accepted connection goes to the torrent runtime (one torrent per
/// process for now; a session that serves several torrents will route by the handshake's info-hash).
public final class PeerListener: Sendable {
    public let channel: any Channel

    /// The port actually bound (useful with port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Listens on `host`:`port` (`::` takes IPv6 and, on Linux, IPv4 too).
    public static func bind(host: String, port: Int, runtime: TorrentRuntime) async throws -> PeerListener {
        let channel = try await ServerBootstrap(group: runtime.eventLoop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: TorrentRuntime.receiveAllocator)
            .childChannelOption(.maxMessagesPerRead, value: TorrentRuntime.receiveBuffersPooled)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    runtime.accepted(channel)
                }
            }
            .bind(host: host, port: port).get()
        return PeerListener(channel: channel)
    }

    public func close() async throws {
        try await channel.close()
    }
}
