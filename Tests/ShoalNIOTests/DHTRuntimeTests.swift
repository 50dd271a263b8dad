import NIOCore
import NIOPosix
import ShoalCore
import ShoalDHT
import Testing

@testable import ShoalNIO

/// The DHT node on real UDP sockets, on loopback only: a small DHT of runtimes joins, one announces, another
/// finds the peer; the same over IPv6; the saved state rejoins without bootstrap.
@Suite("DHT runtime on loopback", .timeLimit(.minutes(2)))
struct DHTRuntimeTests {
    static func startNodes(
        _ count: Int, host: String, group: any EventLoopGroup, first: NodeAddress? = nil
    ) async throws -> [DHTRuntime] {
        var nodes: [DHTRuntime] = []
        var bootstrap = first.map { [$0] } ?? []
        for _ in 0..<count {
            let node = try await DHTRuntime.start(
                configuration: .init(), bindings: [.init(host: host, port: 0)], bootstrap: bootstrap, group: group)
            let port = try #require(await node.status().ports.values.first)
            if bootstrap.isEmpty {
                bootstrap = [NodeAddress(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")!]
            }
            _ = await node.joined()
            nodes.append(node)
        }
        return nodes
    }

    @Test func announceThenGetPeersOverIPv4() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nodes = try await Self.startNodes(12, host: "127.0.0.1", group: group)
        let infoHash = NodeID(hex: "aabbccddeeff00112233445566778899aabbccdd")!
        let announced = await nodes[3].announce(infoHash, port: 51413)
        #expect(announced.count == 1)
        #expect((announced.first?.announced ?? 0) >= 6)
        let found = await nodes[9].getPeers(infoHash)
        #expect(found.first?.peers == [PeerAddress("127.0.0.1:51413")!])
        // Every node learned of others (12 nodes, each with most of the others).
        for node in nodes {
            let status = await node.status()
            #expect((status.nodes[.ipv4] ?? 0) >= 5)
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    @Test(.enabled(if: Self.hasIPv6Loopback)) func announceThenGetPeersOverIPv6() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nodes = try await Self.startNodes(6, host: "::1", group: group)
        let infoHash = NodeID(hex: "00112233445566778899aabbccddeeff00112233")!
        let announced = await nodes[1].announce(infoHash, port: 0, impliedPort: true)
        #expect((announced.first?.announced ?? 0) >= 4)
        let port = try #require(await nodes[1].status().ports[.ipv6])
        let found = await nodes[4].getPeers(infoHash)
        #expect(found.first?.family == .ipv6)
        #expect(found.first?.peers == [PeerAddress("[::1]:\(port)")!])
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    @Test func savedStateRejoinsWithoutBootstrap() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nodes = try await Self.startNodes(6, host: "127.0.0.1", group: group)
        let saved = try #require(await nodes[5].savedState())
        #expect(saved.nodes.count >= 4)
        await nodes[5].stop()
        let restarted = try await DHTRuntime.start(
            configuration: .init(), saved: saved, bindings: [.init(host: "127.0.0.1", port: 0)], bootstrap: [], group: group)
        let joined = await restarted.joined()
        #expect(joined.first?.responses ?? 0 >= 4)
        #expect(await restarted.status().id == saved.id)
        #expect((await restarted.status().nodes[.ipv4] ?? 0) >= 4)
        await restarted.stop()
        for node in nodes.prefix(5) { await node.stop() }
        try await group.shutdownGracefully()
    }

    @Test func garbageDatagramsAreDroppedAndTheNodeCarriesOn() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nodes = try await Self.startNodes(3, host: "127.0.0.1", group: group)
        let port = try #require(await nodes[0].status().ports[.ipv4])
        let sender = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        var random = SplitMix64(seed: 1)
        for size in [0, 1, 20, 200, 1500, 3000] {
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            try await sender.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes))).get()
        }
        try await sender.close()
        // Still answering.
        let found = await nodes[2].findNode(nodes[0].status().id)
        #expect(found.first?.closest.first?.id == (await nodes[0].status().id))
        #expect((await nodes[0].status().statistics.malformed) >= 4)
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    static var hasIPv6Loopback: Bool {
        (try? SocketAddress(ipAddress: "::1", port: 1)) != nil
            && (try? DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "::1", port: 0).wait()
                .close().wait()) != nil
    }
}
