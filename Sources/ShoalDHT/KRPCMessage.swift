/// One KRPC message (BEP 5, "KRPC Protocol"): a bencoded dictionary in one UDP datagram, a query, a response
/// or an error, with its transaction id (`t`), the sender's client version (`v`), the requester's address as
/// the responder sees it (`ip`, BEP 42) and the read-only flag (`ro`, BEP 43).
public struct KRPCMessage: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        case query(KRPCQuery)
        case response(KRPCResponse)
        case error(KRPCErrorReply)
    }

    /// `t`: chosen by the querying node, echoed in the response.
    public var transactionID: [UInt8]
    /// `v`: a client id and version (BEP 20 style, e.g. `SH` and two bytes); optional.
    public var version: [UInt8]?
    /// `ip` (BEP 42, "Bootstrapping"): in a response, the address the query came from, as the responder saw it.
    public var requesterAddress: NodeAddress?
    /// `ro=1` (BEP 43): the sender is a read-only node that answers no queries; do not add it to a routing table.
    public var readOnly: Bool
    public var body: Body

    public init(
        transactionID: [UInt8], version: [UInt8]? = nil, requesterAddress: NodeAddress? = nil, readOnly: Bool = false,
        body: Body
    ) {
        self.transactionID = transactionID
        self.version = version
        self.requesterAddress = requesterAddress
        self.readOnly = readOnly
        self.body = body
    }

    /// The sender's node id, for queries and responses.
    public var senderID: NodeID? {
        switch body {
        case .query(let query): query.id
        case .response(let response): response.id
        case .error: nil
        }
    }
}

/// The four DHT queries of BEP 5, with BEP 32's `want`.
public struct KRPCQuery: Hashable, Sendable {
    /// BEP 32 `want`: which families of nodes the requester wants in the reply.
    public struct Want: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `n4`: a `nodes` key (IPv4).
        public static let ipv4 = Want(rawValue: 1)
        /// `n6`: a `nodes6` key (IPv6).
        public static let ipv6 = Want(rawValue: 2)

        public init(_ family: NodeAddress.Family) { self = family == .ipv4 ? .ipv4 : .ipv6 }
        public func contains(_ family: NodeAddress.Family) -> Bool { contains(Want(family)) }
    }

    public enum Method: Hashable, Sendable {
        case ping
        case findNode(target: NodeID, want: Want)
        case getPeers(infoHash: NodeID, want: Want)
        /// `port` is ignored when `impliedPort` is set (the UDP source port counts instead).
        case announcePeer(infoHash: NodeID, port: UInt16, token: [UInt8], impliedPort: Bool)
        /// A method this node does not implement (answered with error 204).
        case unknown(name: [UInt8])

        /// The `q` value.
        public var name: [UInt8] {
            switch self {
            case .ping: Array("ping".utf8)
            case .findNode: Array("find_node".utf8)
            case .getPeers: Array("get_peers".utf8)
            case .announcePeer: Array("announce_peer".utf8)
            case .unknown(let name): name
            }
        }
    }

    /// `a.id`: the querying node's id.
    public var id: NodeID
    public var method: Method

    public init(id: NodeID, method: Method) {
        self.id = id
        self.method = method
    }
}

/// A response's return values (`r`). Which keys appear depends on the query, which only the transaction id
/// tells, so every key but `id` is optional here.
public struct KRPCResponse: Hashable, Sendable {
    /// `id`: the responding node's id.
    public var id: NodeID
    /// `nodes`: compact IPv4 node info (find_node, get_peers).
    public var nodes: [NodeInfo]?
    /// `nodes6`: compact IPv6 node info (BEP 32).
    public var nodes6: [NodeInfo]?
    /// `values`: peers (get_peers), compact IPv4 or IPv6.
    public var values: [NodeAddress]?
    /// `token`: the write token for announce_peer (get_peers).
    public var token: [UInt8]?

    public init(
        id: NodeID, nodes: [NodeInfo]? = nil, nodes6: [NodeInfo]? = nil, values: [NodeAddress]? = nil,
        token: [UInt8]? = nil
    ) {
        self.id = id
        self.nodes = nodes
        self.nodes6 = nodes6
        self.values = values
        self.token = token
    }

    /// The nodes of one family.
    public func nodes(of family: NodeAddress.Family) -> [NodeInfo] {
        (family == .ipv4 ? nodes : nodes6) ?? []
    }
}

/// An error reply (`y=e`, BEP 5 "Errors"): a code and a message.
public struct KRPCErrorReply: Hashable, Sendable {
    public var code: Int64
    public var message: [UInt8]

    public init(code: Int64, message: String) {
        self.code = code
        self.message = Array(message.utf8)
    }

    public init(code: Int64, messageBytes: [UInt8]) {
        self.code = code
        self.message = messageBytes
    }

    public static let genericError: Int64 = 201
    public static let serverError: Int64 = 202
    /// A malformed packet, invalid arguments or a bad token.
    public static let protocolError: Int64 = 203
    public static let methodUnknown: Int64 = 204
}
