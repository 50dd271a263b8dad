import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker
import ShoalTrackerNIO
import Synchronization
import Testing

/// The tracker's HTTP/1 server byte for byte over loopback: keep-alive, pipelining, HTTP/1.0, `Connection:
/// close`, HEAD, 404, 405 and requests that do not parse or are too large.
@Suite("Tracker HTTP server", .serialized)
struct TrackerHTTPHandlerTests {
    /// Collects what the server sends until it closes the connection.
    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex<[UInt8]>([])
        let closed = Mutex(false)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLock { $0 += Array(buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed.withLock { $0 = true }
        }
    }

    /// Sends `request` on a new connection and waits (bounded) until the server closed it or `wait`
    /// seconds passed; returns what came back and whether it closed.
    static func exchange(_ request: [UInt8], port: Int, wait: Double = 2) async throws -> (text: String, closed: Bool) {
        let group = MultiThreadedEventLoopGroup.singleton
        let collector = Collector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: request))
        let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
        while ContinuousClock.now < deadline && !collector.closed.withLock({ $0 }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let closed = collector.closed.withLock { $0 }
        try? await channel.close()
        return (String(decoding: collector.received.withLock { $0 }, as: UTF8.self), closed)
    }

    static let query =
        "/announce?info_hash=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14"
        + "&peer_id=-XX0001-abcdefghijkl&port=6881&left=0&compact=1"

    static func withServer(_ body: (Int) async throws -> Void) async throws {
        let server = try await TrackerServer.start(
            configuration: .init(httpPort: 0, udpPort: nil, bindAddresses: ["127.0.0.1"], registry: .init(interval: 60, seed: 3)))
        do {
            try await body(server.httpAddresses[0].port!)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test func keepsConnectionsAliveAndAnswersPipelinedRequestsInOrder() async throws {
        try await Self.withServer { port in
            let request = "GET \(Self.query) HTTP/1.1\r\nHost: x\r\n\r\n"
            let scrape = "GET /scrape HTTP/1.1\r\nHost: x\r\n\r\n"
            let (text, closed) = try await Self.exchange(Array((request + scrape + request).utf8), port: port, wait: 0.5)
            #expect(!closed, "HTTP/1.1 stays open")
            let answers = text.split(separator: "HTTP/1.1 200 OK\r\n", omittingEmptySubsequences: true)
            #expect(answers.count == 3, "\(text)")
            #expect(answers.count == 3 && answers[0].contains("8:completei1e") && answers[1].contains("5:files"))
            #expect(answers.count == 3 && answers[2].contains("8:completei1e"))
            #expect(text.contains("Content-Type: text/plain\r\nContent-Length: "))
        }
    }

    @Test func closesForHTTP10AndConnectionClose() async throws {
        try await Self.withServer { port in
            let old = try await Self.exchange(Array("GET \(Self.query) HTTP/1.0\r\n\r\n".utf8), port: port)
            #expect(old.closed && old.text.hasPrefix("HTTP/1.0 200 OK\r\n") && old.text.contains("Connection: close"))
            let kept = try await Self.exchange(Array("GET \(Self.query) HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".utf8), port: port, wait: 0.5)
            #expect(!kept.closed && kept.text.contains("Connection: keep-alive\r\n"))
            // A request after `Connection: close` is not answered.
            let close = "GET \(Self.query) HTTP/1.1\r\nConnection: close\r\n\r\nGET /scrape HTTP/1.1\r\n\r\n"
            let closing = try await Self.exchange(Array(close.utf8), port: port)
            #expect(closing.closed && closing.text.components(separatedBy: "HTTP/1.1").count == 2)
        }
    }

    /// A connection that sends nothing for the idle timeout (1 s here) is closed within the second after
    /// (not before); one still open at stop is closed then.
    @Test func closesIdleConnectionsAndOpenOnesAtStop() async throws {
        let server = try await TrackerServer.start(
            configuration: .init(
                httpPort: 0, udpPort: nil, bindAddresses: ["127.0.0.1"], registry: .init(interval: 60, seed: 3),
                httpIdleTimeout: .seconds(1)))
        let port = server.httpAddresses[0].port!
        let start = ContinuousClock.now
        let idle = try await Self.exchange(Array("GET /ann".utf8), port: port, wait: 6)
        let elapsed = ContinuousClock.now - start
        #expect(idle.closed && idle.text.isEmpty)
        #expect(elapsed >= .milliseconds(900), "closed after \(elapsed)")
        await server.stop()

        let kept = try await TrackerServer.start(
            configuration: .init(httpPort: 0, udpPort: nil, bindAddresses: ["127.0.0.1"], registry: .init(interval: 60, seed: 3)))
        let keptPort = kept.httpAddresses[0].port!
        async let open = Self.exchange(Array("GET /ann".utf8), port: keptPort, wait: 10)
        try await Task.sleep(for: .milliseconds(500))
        let stopping = ContinuousClock.now
        await kept.stop()
        let stopped = try await open
        #expect(stopped.closed && ContinuousClock.now - stopping < .seconds(5), "closed by stop, not by the 60 s timeout")
    }

    @Test func answersHeadNotFoundAndOtherMethods() async throws {
        try await Self.withServer { port in
            let head = try await Self.exchange(Array("HEAD \(Self.query) HTTP/1.1\r\nConnection: close\r\n\r\n".utf8), port: port)
            #expect(head.text.hasPrefix("HTTP/1.1 200 OK\r\n") && head.text.hasSuffix("\r\n\r\n"), "no body: \(head.text)")
            #expect(!head.text.contains("Content-Length: 0"))
            let missing = try await Self.exchange(Array("GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n".utf8), port: port)
            #expect(missing.text == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            let post = try await Self.exchange(Array("POST /announce HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".utf8), port: port, wait: 0.5)
            #expect(post.text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"))
            // A bad query is still 200 with BEP 3's failure reason.
            let bad = try await Self.exchange(Array("GET /announce?port=1 HTTP/1.1\r\nConnection: close\r\n\r\n".utf8), port: port)
            #expect(bad.text.hasPrefix("HTTP/1.1 200 OK\r\n") && bad.text.contains("14:failure reason"))
        }
    }

    @Test func refusesGarbageAndOversizedRequestsWith400() async throws {
        try await Self.withServer { port in
            let garbage = try await Self.exchange(Array("\u{1}\u{2} nonsense\r\n\r\n".utf8), port: port)
            #expect(garbage.closed && garbage.text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
            let huge = "GET /announce?" + String(repeating: "a", count: 20_000) + " HTTP/1.1\r\n\r\n"
            let oversized = try await Self.exchange(Array(huge.utf8), port: port)
            #expect(oversized.closed && oversized.text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
            // Byte by byte, a request still gets its answer.
            let request = Array("GET \(Self.query) HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)
            let group = MultiThreadedEventLoopGroup.singleton
            let collector = Collector()
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(host: "127.0.0.1", port: port).get()
            for byte in request { try await channel.writeAndFlush(channel.allocator.buffer(bytes: [byte])) }
            let deadline = ContinuousClock.now + .seconds(2)
            while ContinuousClock.now < deadline && !collector.closed.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(String(decoding: collector.received.withLock { $0 }, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
            try? await channel.close()
        }
    }
}
