import ShoalCore

@testable import ShoalDHT

typealias TestNode = DHTNode<SplitMix64>

/// Helpers to drive one node by hand: read what it sent, answer as other nodes would.
enum DHTNodeHarness {
    static func node(
        _ configure: (inout TestNode.Configuration) -> Void = { _ in }, id: NodeID? = nil, seed: UInt64 = 1
    ) -> TestNode {
        var configuration = TestNode.Configuration()
        configure(&configuration)
        return TestNode(configuration: configuration, id: id, random: SplitMix64(seed: seed), now: .zero)
    }

    /// The datagrams among `actions`, decoded.
    static func sent(_ actions: [DHTAction]) -> [(message: KRPCMessage, to: NodeAddress)] {
        actions.compactMap { action in
            guard case .send(let bytes, let destination) = action else { return nil }
            return (try! KRPCMessage(decoding: bytes), destination)
        }
    }

    static func queries(_ actions: [DHTAction]) -> [(message: KRPCMessage, query: KRPCQuery, to: NodeAddress)] {
        sent(actions).compactMap { entry in
            guard case .query(let query) = entry.message.body else { return nil }
            return (entry.message, query, entry.to)
        }
    }

    static func query(_ method: KRPCQuery.Method, from id: NodeID, transaction: [UInt8] = [0, 1], readOnly: Bool = false) -> [UInt8] {
        KRPCMessage(transactionID: transaction, readOnly: readOnly, body: .query(KRPCQuery(id: id, method: method))).encoded
    }

    static func answer(_ message: KRPCMessage, with response: KRPCResponse, requester: NodeAddress? = nil) -> [UInt8] {
        KRPCMessage(transactionID: message.transactionID, requesterAddress: requester, body: .response(response)).encoded
    }

    /// Enters `nodes` into the node's table: it pings each, each answers.
    static func populate(_ node: inout TestNode, with nodes: [NodeInfo], now: Instant = .zero) {
        for info in nodes {
            let actions = node.ping(info.address, now: now)
            for query in queries(actions) where query.to == info.address {
                _ = node.received(answer(query.message, with: KRPCResponse(id: info.id)), from: info.address, now: now)
            }
        }
    }

    static func address(_ index: Int, port: UInt16 = 6881) -> NodeAddress {
        NodeAddress(host: .init(ipv4: 0x0A00_0000 | UInt32(index)), port: port)
    }

    static func randomNodes(_ count: Int, random: inout SplitMix64, offset: Int = 1) -> [NodeInfo] {
        (0..<count).map { NodeInfo(id: .random(using: &random), address: address(offset + $0)) }
    }
}
