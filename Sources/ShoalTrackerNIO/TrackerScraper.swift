import AsyncHTTPClient
import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker

/// One scrape of one tracker (`shoal scrape`): BEP 48 over HTTP(S), BEP 15 over UDP (connect, then
/// scrape, retransmitted on the exchange's schedule until `timeout`).
public enum TrackerScraper {
    /// Counts for `infoHashes` (for HTTP, none asks for every swarm the tracker is willing to list).
    public static func scrape(
        _ url: TrackerURL, infoHashes: [Bytes20], group: any EventLoopGroup, httpClient: HTTPClient,
        threadPool: NIOThreadPool, timeout: Interval = .seconds(15)
    ) async throws -> ScrapeResponse {
        switch url.scheme {
        case .http, .https:
            guard let scrapeURL = url.scrapeURL else {
                throw TrackerError(.invalidURL("\(url) does not end in /announce: the tracker offers no scrape (BEP 48)"))
            }
            let query = infoHashes.map { "info_hash=" + URLQuery.percentEncode($0.bytes) }.joined(separator: "&")
            var request = HTTPClientRequest(url: scrapeURL.appendingQuery(query))
            request.headers.add(name: "User-Agent", value: "Shoal/\(ShoalVersion.string)")
            let response = try await httpClient.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            guard response.status == .ok else {
                throw TrackerServerError(message: "HTTP status \(response.status.code) \(response.status.reasonPhrase)")
            }
            var body = try await response.body.collect(upTo: TrackerAnnouncer.maxBody)
            return try ScrapeResponse(http: body.readBytes(length: body.readableBytes) ?? [])
        case .udp:
            guard !infoHashes.isEmpty else { throw TrackerError(.invalidURL("a UDP scrape must name info-hashes (BEP 15 has no full scrape)")) }
            let hashes = Array(infoHashes.prefix(UDPTrackerRequest.maxScrapeHashes))
            let counts = try await udpScrape(url, hashes: hashes, group: group, threadPool: threadPool, timeout: timeout)
            var response = ScrapeResponse()
            for (hash, count) in zip(hashes, counts) { response.files[hash] = count }
            return response
        }
    }

    enum Input: Sendable {
        case datagram([UInt8])
        case tick
    }

    private static func udpScrape(
        _ url: TrackerURL, hashes: [Bytes20], group: any EventLoopGroup, threadPool: NIOThreadPool, timeout: Interval
    ) async throws -> [ScrapeCounts] {
        let loop = group.next()
        let address = try await threadPool.runIfActive(eventLoop: loop) {
            try SocketAddress.makeAddressResolvingHost(url.host, port: url.port)
        }.get()
        let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
        let channel = try await DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(from: address) { continuation.yield(.datagram($0)) })
                }
            }
            .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                continuation.yield(.tick)
            }
        }
        defer {
            ticker.cancel()
            continuation.finish()
            channel.close(promise: nil)
        }
        var random = SystemRandomNumberGenerator()
        var exchange = UDPTrackerExchange(configuration: .init(retransmitBase: .seconds(2)))
        let start = TrackerClock.now()
        /// Sends what the exchange asks; the counts once it has them.
        func perform(_ outcome: UDPTrackerExchange.Outcome) async throws -> [ScrapeCounts]? {
            switch outcome {
            case .send(let datagram):
                try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: datagram)))
                return nil
            case .scraped(let counts):
                return counts
            case .refused(let error):
                throw error
            case .announced, .ignored:
                return nil
            }
        }
        if let counts = try await perform(exchange.begin(.scrape(hashes), now: start, random: &random)) { return counts }
        for await input in inputs {
            let now = TrackerClock.now()
            guard now - start < timeout else { break }
            let outcome: UDPTrackerExchange.Outcome
            switch input {
            case .datagram(let bytes):
                outcome = exchange.received(bytes, ipv6: address.protocol == .inet6, now: now, random: &random)
            case .tick:
                guard let deadline = exchange.deadline, deadline <= now else { continue }
                outcome = exchange.timedOut(now: now, random: &random)
            }
            if let counts = try await perform(outcome) { return counts }
        }
        throw TrackerServerError(message: "\(url) did not answer within \(Int(timeout.seconds)) s")
    }
}

/// Hands on the datagrams that come from one address.
final class DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let address: SocketAddress
    private let deliver: @Sendable ([UInt8]) -> Void

    init(from address: SocketAddress, deliver: @escaping @Sendable ([UInt8]) -> Void) {
        self.address = address
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == address, let bytes = envelope.data.readBytes(length: envelope.data.readableBytes) else { return }
        deliver(bytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
