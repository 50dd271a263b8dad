import AsyncHTTPClient
import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker
import ShoalTrackerNIO
import Synchronization
import Testing

/// The tracker server and the announce runtime over loopback sockets: real UDP and HTTP.
@Suite("Tracker over loopback", .serialized)
struct TrackerLoopbackTests {
    static let infoHash = Bytes20(bytes: (0..<20).map { UInt8($0 + 1) })!

    static func startServer(statePath: String? = nil, allow: Set<Bytes20>? = nil, host: String = "127.0.0.1") async throws -> TrackerServer {
        try await TrackerServer.start(
            configuration: .init(
                httpPort: 0, udpPort: 0, bindAddresses: [host],
                registry: .init(interval: 60, allowList: allow, seed: 7), statePath: statePath))
    }

    static func urls(_ server: TrackerServer) -> (http: String, udp: String) {
        ("http://127.0.0.1:\(server.httpAddresses[0].port!)/announce", "udp://127.0.0.1:\(server.udpAddresses[0].port!)")
    }

    /// What an announcer saw.
    final class Seen: Sendable {
        let peers = Mutex<[PeerAddress]>([])
        let reports = Mutex<[TrackerClient.Report]>([])
    }

    /// A running announcer for a peer listening on `port`.
    struct Client {
        let announcer: TrackerAnnouncer
        let seen: Seen
    }

    static func client(
        port: UInt16, trackers: [[String]], group: any EventLoopGroup, http: HTTPClient, pool: NIOThreadPool, left: Int64 = 100
    ) -> Client {
        var random = SplitMix64(seed: UInt64(port))
        let configuration = TrackerClient.Configuration(
            infoHash: infoHash, peerID: Bytes20(PeerID.shoal(using: &random)), port: port, key: UInt32(port), seed: UInt64(port))
        let seen = Seen()
        let announcer = TrackerAnnouncer(
            machine: TrackerClient.StateMachine(configuration: configuration, tiers: trackers),
            totals: .init(left: left), group: group, httpClient: http, threadPool: pool
        ) { event in
            switch event {
            case .peers(let peers): seen.peers.withLock { $0 += peers }
            case .report(let report): seen.reports.withLock { $0.append(report) }
            }
        }
        return Client(announcer: announcer, seen: seen)
    }

    /// Waits (bounded) until `condition` holds.
    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    struct Runtime {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        let http: HTTPClient

        init() {
            pool.start()
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(2), read: .seconds(10))
            http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        }

        func shutdown() async {
            try? await http.shutdown()
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
        }
    }

    @Test(arguments: ["udp", "http"])
    func peersFindEachOtherThroughTheTrackerAndLeaveWithStopped(scheme: String) async throws {
        let server = try await Self.startServer()
        let runtime = Runtime()
        let url = scheme == "udp" ? Self.urls(server).udp : Self.urls(server).http
        let seed = Self.client(port: 7001, trackers: [[url]], group: runtime.group, http: runtime.http, pool: runtime.pool, left: 0)
        seed.announcer.start()
        #expect(await Self.eventually { server.status.peers == 1 })
        let leecher = Self.client(port: 7002, trackers: [[url]], group: runtime.group, http: runtime.http, pool: runtime.pool)
        leecher.announcer.start()
        #expect(await Self.eventually { leecher.seen.peers.withLock { $0 } == [PeerAddress("127.0.0.1:7001")!] })
        #expect(server.status.peers == 2)
        let announced = leecher.seen.reports.withLock { $0 }
        // The counts include the leecher itself.
        guard case .announced(_, .started, 1, 1, 1, let interval)? = announced.first, interval == Interval.seconds(60) else {
            Issue.record("unexpected reports: \(announced)")
            return
        }
        await leecher.announcer.stop(totals: .init(left: 100))
        #expect(leecher.seen.reports.withLock { $0.last } == .stopped)
        #expect(server.status.peers == 1, "stopped removed the leecher")
        let response = try await TrackerScraper.scrape(
            try TrackerURL(parsing: url), infoHashes: [Self.infoHash], group: runtime.group, httpClient: runtime.http, threadPool: runtime.pool)
        #expect(response.files[Self.infoHash] == ScrapeCounts(seeders: 1, completed: 0, leechers: 0))
        await seed.announcer.stop(totals: .init(left: 0))
        await server.stop()
        await runtime.shutdown()
    }

    /// Over IPv6 loopback: the answers carry IPv6 peers (BEP 7's `peers6`, BEP 15's 18-byte entries).
    @Test(arguments: ["udp", "http"])
    func peersFindEachOtherOverIPv6(scheme: String) async throws {
        let server = try await Self.startServer(host: "::1")
        let runtime = Runtime()
        let port = scheme == "udp" ? server.udpAddresses[0].port! : server.httpAddresses[0].port!
        let url = scheme == "udp" ? "udp://[::1]:\(port)" : "http://[::1]:\(port)/announce"
        let seed = Self.client(port: 7011, trackers: [[url]], group: runtime.group, http: runtime.http, pool: runtime.pool, left: 0)
        seed.announcer.start()
        #expect(await Self.eventually { server.status.peers == 1 })
        let leecher = Self.client(port: 7012, trackers: [[url]], group: runtime.group, http: runtime.http, pool: runtime.pool)
        leecher.announcer.start()
        #expect(await Self.eventually { leecher.seen.peers.withLock { $0 } == [PeerAddress("[::1]:7011")!] })
        await leecher.announcer.stop(totals: .init(left: 100))
        await seed.announcer.stop(totals: .init(left: 0))
        #expect(server.status.peers == 0)
        await server.stop()
        await runtime.shutdown()
    }

    @Test func aDeadTrackerFailsOverToTheNextOfItsTier() async throws {
        let server = try await Self.startServer()
        let runtime = Runtime()
        let dead = "http://127.0.0.1:1/announce"
        let client = Self.client(port: 7003, trackers: [[dead, Self.urls(server).http]], group: runtime.group, http: runtime.http, pool: runtime.pool)
        client.announcer.start()
        #expect(await Self.eventually { server.status.peers == 1 })
        await client.announcer.stop(totals: .init(left: 1))
        await server.stop()
        await runtime.shutdown()
    }

    @Test func refusalsReachTheUser() async throws {
        let server = try await Self.startServer(allow: [Bytes20(bytes: Array(repeating: 9, count: 20))!])
        let runtime = Runtime()
        for url in [Self.urls(server).http, Self.urls(server).udp] {
            let client = Self.client(port: 7004, trackers: [[url]], group: runtime.group, http: runtime.http, pool: runtime.pool)
            client.announcer.start()
            #expect(await Self.eventually {
                client.seen.reports.withLock { reports in
                    reports.contains { if case .failed(_, let reason, _) = $0 { reason.contains("allow-list") } else { false } }
                }
            })
            await client.announcer.stop(totals: .init(left: 1))
        }
        await server.stop()
        await runtime.shutdown()
    }

    @Test func survivesGarbageAndKeepsServing() async throws {
        let server = try await Self.startServer()
        let runtime = Runtime()
        // A flood of junk datagrams of every size, and malformed HTTP requests.
        let udpPort = server.udpAddresses[0].port!
        let junk = try await DatagramBootstrap(group: runtime.group).bind(host: "127.0.0.1", port: 0).get()
        var random = SplitMix64(seed: 3)
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: udpPort)
        for index in 0..<2000 {
            let length = Int(random.next() % 1600)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if index % 4 == 0 && length >= 16 { bytes.replaceSubrange(8..<12, with: [0, 0, 0, 1]) }
            junk.write(AddressedEnvelope(remoteAddress: target, data: junk.allocator.buffer(bytes: bytes)), promise: nil)
            if index % 64 == 0 { junk.flush() }
        }
        junk.flush()
        let base = Self.urls(server).http
        for query in ["", "?info_hash=%zz", "?info_hash=" + String(repeating: "a", count: 5000), "?port=0&numwant=-99999999999999999999"] {
            var request = HTTPClientRequest(url: base + query)
            request.method = .GET
            let response = try await runtime.http.execute(request, timeout: .seconds(5))
            #expect(response.status == .ok)
            let body = try await response.body.collect(upTo: 1 << 16)
            #expect(throws: TrackerError.self) { try AnnounceResponse(http: Array(buffer: body)) }
        }
        let notFound = try await runtime.http.execute(HTTPClientRequest(url: base.replacingLastComponent("nothing")), timeout: .seconds(5))
        #expect(notFound.status == .notFound)
        // Still serving both protocols.
        for url in [Self.urls(server).udp, base] {
            let client = Self.client(port: 7005, trackers: [[url]], group: runtime.group, http: runtime.http, pool: runtime.pool)
            client.announcer.start()
            #expect(await Self.eventually { client.seen.reports.withLock { !$0.isEmpty } })
            guard case .announced? = client.seen.reports.withLock({ $0.first }) else {
                Issue.record("no announce after the garbage: \(client.seen.reports.withLock { $0 })")
                return
            }
            await client.announcer.stop(totals: .init(left: 1))
        }
        #expect(server.status.udp.dropped > 1000)
        try await junk.close()
        await server.stop()
        await runtime.shutdown()
    }

    @Test func aRestartWithAStateFileKeepsTheSwarms() async throws {
        let path = "/tmp/shoal-tracker-state-\(UInt32.random(in: 0...UInt32.max)).bin"
        defer { unlinkFile(path) }
        let runtime = Runtime()
        let first = try await Self.startServer(statePath: path)
        let client = Self.client(port: 7006, trackers: [[Self.urls(first).udp]], group: runtime.group, http: runtime.http, pool: runtime.pool, left: 0)
        client.announcer.start()
        #expect(await Self.eventually { first.status.peers == 1 })
        await first.stop()
        let second = try await Self.startServer(statePath: path)
        #expect(second.status.peers == 1 && second.status.swarms == 1)
        #expect(second.stateWarning == nil)
        await second.stop()
        await client.announcer.stop(totals: .init(left: 0))
        await runtime.shutdown()
    }
}

extension String {
    fileprivate func replacingLastComponent(_ name: String) -> String {
        guard let slash = lastIndex(of: "/") else { return self }
        return self[...slash] + name
    }
}

#if canImport(Glibc)
import Glibc
private func unlinkFile(_ path: String) { unlink(path) }
#endif
