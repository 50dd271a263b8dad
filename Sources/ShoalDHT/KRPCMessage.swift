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
