import ShoalCore
import ShoalTracker

extension FuzzChecks {
    /// HTTP tracker answers and requests: an accepted announce or scrape answer re-encodes (canonical,
    /// compact) to bytes that decode to the same answer, after at most one normalisation (peers regrouped
    /// by family, display text cut and escaped once); the server's query parsers and the URL parser never
    /// trap, and a parsed URL prints text that parses to the same URL.
    static func trackerHTTPCheck(_ bytes: [UInt8]) {
        if let response = try? AnnounceResponse(http: bytes) {
            guard let once = try? AnnounceResponse(http: response.http) else { fatalError("a re-encoded announce answer does not decode") }
            precondition(once.peers.sorted() == response.peers.sorted(), "announce peers changed across a round trip")
            guard let twice = try? AnnounceResponse(http: once.http) else { fatalError("a normalised announce answer does not decode") }
            precondition(twice == once, "a normalised announce answer changed across a round trip")
        }
        if let response = try? ScrapeResponse(http: bytes) {
            guard let again = try? ScrapeResponse(http: response.http) else { fatalError("a re-encoded scrape answer does not decode") }
            precondition(again == response, "a scrape answer changed across a round trip")
        }
        if let query = try? HTTPAnnounceQuery(query: bytes) {
            let request = AnnounceRequest(
                infoHash: query.infoHash, peerID: query.peerID, port: query.port, uploaded: query.uploaded,
                downloaded: query.downloaded, left: query.left, event: query.event, trackerID: query.trackerID)
            guard let again = try? HTTPAnnounceQuery(query: Array(request.httpQuery.utf8)) else {
                fatalError("a re-encoded announce query does not parse")
            }
            precondition(again.infoHash == query.infoHash && again.peerID == query.peerID && again.port == query.port
                && again.left == query.left && again.event == query.event && again.trackerID == query.trackerID,
                "an announce query changed across a round trip")
        }
        _ = try? HTTPScrapeQuery(query: bytes)
        if let text = String(validating: bytes, as: UTF8.self), let url = try? TrackerURL(parsing: text) {
            guard let again = try? TrackerURL(parsing: url.description) else { fatalError("a printed tracker URL does not parse: \(url)") }
            precondition(again == url, "a tracker URL changed across a round trip")
        }
    }

    /// BEP 15 packets: an accepted request re-encodes to exactly the bytes it was read from (its fixed
    /// part); an accepted answer re-encodes to one that decodes the same after one normalisation; and the
    /// server, given the packet (with a valid connection id put in front of requests that could use one),
    /// answers only with packets a client can read.
    static func trackerUDPCheck(_ bytes: [UInt8]) {
        if let request = try? UDPTrackerRequest(decoding: bytes) {
            let encoded = request.encoded
            precondition(encoded.count <= bytes.count, "a UDP request re-encoded longer than its bytes")
            var expected = Array(bytes.prefix(encoded.count))
            if case .announce(_, _, let announce) = request, AnnounceEvent(rawValue: UInt32(bigEndian: bytes.withUnsafeBytes {
                $0.loadUnaligned(fromByteOffset: 80, as: UInt32.self)
            })) == nil {
                // An unknown event number reads as `none`.
                precondition(announce.event == .none, "an unknown event did not read as none")
                expected.replaceSubrange(80..<84, with: [0, 0, 0, 0])
            }
            precondition(expected == encoded, "a UDP request did not re-encode to its bytes")
        }
        for ipv6 in [false, true] {
            guard let response = try? UDPTrackerResponse(decoding: bytes, ipv6: ipv6) else { continue }
            guard let once = try? UDPTrackerResponse(decoding: response.encoded, ipv6: ipv6) else { fatalError("a re-encoded UDP answer does not decode") }
            guard let twice = try? UDPTrackerResponse(decoding: once.encoded, ipv6: ipv6) else { fatalError("a normalised UDP answer does not decode") }
            precondition(twice == once, "a UDP answer changed across a round trip")
        }
        var registry = SwarmRegistry(configuration: .init(interval: 60, maxSwarms: 64, maxPeers: 256, seed: 1), now: .zero)
        var server = UDPTrackerServer(secret: (1, 2), now: .zero)
        let source = TrackerHost.ipv4(0x0A00_0001)
        var reply: [UInt8] = []
        // Learn a valid connection id, then replay the input with it.
        let connect = UDPTrackerRequest.connect(transactionID: 1).encoded
        _ = connect.withUnsafeBytes { server.received($0, from: source, now: .zero, registry: &registry, reply: &reply) }
        guard case .connect(_, let id)? = try? UDPTrackerResponse(decoding: reply, ipv6: false) else { fatalError("the server did not answer a connect") }
        var packets = [bytes]
        if bytes.count >= 16 {
            var withID = bytes
            withUnsafeBytes(of: id.bigEndian) { withID.replaceSubrange(0..<8, with: $0) }
            packets.append(withID)
        }
        for packet in packets {
            reply.removeAll()
            let answered = packet.withUnsafeBytes { server.received($0, from: source, now: .seconds(1), registry: &registry, reply: &reply) }
            if answered {
                precondition((try? UDPTrackerResponse(decoding: reply, ipv6: false)) != nil, "the server answered with a packet no client can read")
            }
        }
    }

    /// Tracker state files: an accepted file, restored and saved again, restores to a registry that saves
    /// the same bytes.
    static func trackerStateCheck(_ bytes: [UInt8]) {
        let configuration = SwarmRegistry.Configuration(interval: 60, maxSwarms: 1000, maxPeers: 10_000, seed: 1)
        guard let registry = try? SwarmRegistry(restoring: bytes, configuration: configuration, now: .zero) else { return }
        let saved = registry.snapshot(now: .zero)
        guard let again = try? SwarmRegistry(restoring: saved, configuration: configuration, now: .zero) else {
            fatalError("a saved tracker state cannot be restored")
        }
        precondition(again.snapshot(now: .zero) == saved, "a tracker state changed across a round trip")
        precondition(again.peerCount == registry.peerCount && again.swarmCount == registry.swarmCount, "counts changed")
    }
}
