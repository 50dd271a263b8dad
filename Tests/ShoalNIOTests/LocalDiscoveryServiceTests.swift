import NIOCore
import NIOPosix
import ShoalCore
import ShoalNIO
import ShoalSwarm
import Synchronization
import Testing

/// The LSD service's sockets on unicast loopback endpoints (no multicast group is joined: the suite never
/// multicasts on the host's network; the interop suite does, inside a network namespace).
@Suite("Local service discovery over loopback UDP")
struct LocalDiscoveryServiceTests {
    /// Free UDP ports on 127.0.0.1 (bound once with port 0 and released).
    static func freeUDPPorts(_ count: Int) async throws -> [Int] {
        var channels: [any Channel] = []
        for _ in 0..<count {
            channels.append(try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get())
        }
        let ports = channels.compactMap { $0.localAddress?.port }
        for channel in channels { try await channel.close() }
        return ports
    }

    static func endpoint(bind: Int, sendTo: Int) throws -> LocalDiscoveryService.Endpoint {
        .init(
            group: .ipv4, bindHost: "127.0.0.1", bindPort: bind,
            destination: try SocketAddress(ipAddress: "127.0.0.1", port: sendTo), joinsGroup: false)
    }

    final class Found: Sendable {
        private let peers = Mutex<[PeerAddress]>([])
        func add(_ more: [PeerAddress]) { peers.withLock { $0 += more } }
        var all: [PeerAddress] { peers.withLock { $0 } }
    }

    @Test func twoServicesFindEachOtherAndIgnoreThemselvesAndGarbage() async throws {
        let ports = try await Self.freeUDPPorts(2)
        let hash = Digest20(bytes: Array(repeating: 0x5A, count: 20))!
        let first = try LocalDiscoveryService(endpoints: [try Self.endpoint(bind: ports[0], sendTo: ports[1])], cookie: "first")
        let second = try LocalDiscoveryService(endpoints: [try Self.endpoint(bind: ports[1], sendTo: ports[0])], cookie: "second")
        let foundByFirst = Found()
        let foundBySecond = Found()
        try await first.start(infoHash: hash, port: 5001) { peers, source in
            #expect(source == .lsd)
            foundByFirst.add(peers)
        }
        // The first announced before the second listened; the second's announce reaches the first.
        try await second.start(infoHash: hash, port: 5002) { peers, _ in foundBySecond.add(peers) }
        #expect(await eventually(within: .seconds(5)) { foundByFirst.all == [PeerAddress("127.0.0.1:5002")!] })

        // Injected datagrams: garbage, the first's own announce, an announce for another torrent, one for ours.
        let sender = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: ports[0])
        func inject(_ bytes: [UInt8]) async throws {
            try await sender.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes)))
        }
        try await inject(Array(repeating: 0xFF, count: 2000))
        try await inject(Array("BT-SEARCH * HTTP/1.1\r\nPort: 7\r\n".utf8))
        let other = Digest20(bytes: Array(repeating: 0x11, count: 20))!
        try await inject(LocalDiscoveryAnnouncement(host: "x", port: 5003, infoHashes: [hash], cookie: "first").encoded)
        try await inject(LocalDiscoveryAnnouncement(host: "x", port: 5004, infoHashes: [other], cookie: "x").encoded)
        // One for our torrent: a host is heard at most once a second (the flood rule, tested in virtual time in
        // LocalDiscoveryTests), and a starved run may deliver these datagrams within a second of each other, so it
        // is sent again each 1.1 s until heard (at most 5 times).
        let ours = LocalDiscoveryAnnouncement(host: "x", port: 5005, infoHashes: [hash], cookie: "x").encoded
        for _ in 0..<5 where !foundByFirst.all.contains(PeerAddress("127.0.0.1:5005")!) {
            try await Task.sleep(for: .milliseconds(1100))
            try await inject(ours)
            _ = await eventually(within: .seconds(1)) { foundByFirst.all.contains(PeerAddress("127.0.0.1:5005")!) }
        }
        #expect(foundByFirst.all == [PeerAddress("127.0.0.1:5002")!, PeerAddress("127.0.0.1:5005")!])
        try await sender.close()
        await first.stop()
        await second.stop()
        #expect(foundBySecond.all.isEmpty, "the first announced before the second listened, and not again within 5 minutes")
    }

    /// The whole path in one process: an announce injected into a leecher's LSD socket names the seed's
    /// port; the leecher's runtime dials it and downloads everything.
    @Test func anInjectedAnnounceMakesTheDownloadDialTheSeed() async throws {
        let torrent = try TestTorrent.standard(seed: 80)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, seed: 81)) { await $0.shutdown() }
            seed.start()
            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, seed: 82)) { await $0.shutdown() }
            leecher.start()
            let ports = try await Self.freeUDPPorts(2)
            let service = try LocalDiscoveryService(endpoints: [try Self.endpoint(bind: ports[0], sendTo: ports[1])], cookie: "leecher")
            let sources = PeerSources([service])
            sources.route(to: leecher.runtime)
            await sources.start(infoHash: torrent.infoHash, port: 6881)
            cleanup.add { await sources.stop() }

            let sender = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            cleanup.add { try? await sender.close() }
            let announce = LocalDiscoveryAnnouncement(
                host: LocalDiscoveryAnnouncement.hostHeader(ipv6: false), port: UInt16(seed.listener!.port),
                infoHashes: [torrent.infoHash], cookie: "seed")
            try await sender.writeAndFlush(
                AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: ports[0]), data: ByteBuffer(bytes: announce.encoded)))
            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the leecher never downloaded from the seed it heard of")
            #expect(torrent.isDownloaded(in: leecher.directory))
        }
    }
}
