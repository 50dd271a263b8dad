/// Votes for our external address from the `ip` fields of answers (BEP 42, "Bootstrapping": "there should be
/// some mechanism to determine whether or not the node has a correct understanding of its external IP ...
/// This could be done by voting"). One vote per voter; the most recent voters only.
struct ExternalAddressVotes: Sendable {
    let required: Int
    private var votes: [(voter: NodeAddress.Host, address: NodeAddress.Host)] = []
    private static var capacity: Int { 32 }

    init(required: Int) { self.required = required }

    /// Records a vote; returns the address once `required` distinct voters agree on it.
    mutating func vote(by voter: NodeAddress.Host, for address: NodeAddress.Host) -> NodeAddress.Host? {
        votes.removeAll { $0.voter == voter }
        if votes.count >= Self.capacity { votes.removeFirst() }
        votes.append((voter, address))
        let agreeing = votes.reduce(0) { $0 + ($1.address == address ? 1 : 0) }
        return agreeing >= Swift.max(1, required) ? address : nil
    }
}
