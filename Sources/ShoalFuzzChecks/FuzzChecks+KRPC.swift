import ShoalCore
import ShoalDHT

extension FuzzChecks {
    /// KRPC datagrams (BEP 5): an accepted message re-encodes to a datagram that decodes to the same message;
    /// a refused one throws a ``DHTError`` without trapping. Then the datagram drives a real ``DHTNode`` as a
    /// query, and (with its transaction id replaced by one the node is waiting for) as an answer to its
    /// lookup, and the node's bounds must hold.
    static func krpcMessages(_ bytes: [UInt8]) {
        let decoded = try? KRPCMessage(decoding: bytes)
        if let decoded {
            let encoded = decoded.encoded
            guard let again = try? KRPCMessage(decoding: encoded) else {
                fatalError("a re-encoded KRPC message does not decode: \(decoded)")
            }
            precondition(again == decoded, "KRPC message changed across a round trip")
            precondition(again.encoded == encoded, "KRPC encoding is not canonical")
        }
        drive(bytes, decoded: decoded)
    }

    private static func drive(_ bytes: [UInt8], decoded: KRPCMessage?) {
        var configuration = DHTNode<SplitMix64>.Configuration(families: [.ipv4, .ipv6])
        configuration.maxPendingQueries = 16
        var node = DHTNode(configuration: configuration, random: SplitMix64(seed: 7), now: .zero)
        let peer = NodeAddress("10.1.2.3:6881")!
        let peer6 = NodeAddress("[fd00::1]:6881")!
        var now = Instant.zero
        var actions = node.start(bootstrap: [peer, peer6], now: now).1
        actions += node.received(bytes, from: peer, now: now)
        actions += node.received(bytes, from: peer6, now: now)
        if let decoded {
            // The same content as an answer to each query the node has sent.
            for action in actions {
                guard case .send(let query, let destination) = action,
                    let sent = try? KRPCMessage(decoding: query), case .query = sent.body
                else { continue }
                var answer = decoded
                answer.transactionID = sent.transactionID
                if case .query = answer.body { continue }
                _ = node.received(answer.encoded, from: destination, now: now)
            }
        }
        for _ in 0..<4 {
            now = now + .seconds(31)
            _ = node.tick(now: now)
            precondition(node.pendingQueries <= configuration.maxPendingQueries, "pending queries over the bound")
        }
        precondition(node.activeLookups <= configuration.maxLookups, "lookups over the bound")
        precondition(node.table(.ipv4).bucketCount <= 160, "too many buckets")
    }
}
