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
