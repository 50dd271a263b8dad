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
