/// The outcome of a rechoke: whom to unchoke, and what changes from the current state.
public struct ChokeDecision: Hashable, Sendable {
    /// Every peer to keep or make unchoked, the optimistic ones included; everyone else is choked. Ascending.
    public var unchoked: [PeerKey]
    /// The optimistic unchokes among `unchoked`. Ascending.
    public var optimistic: [PeerKey]
    /// Peers choked now that should get an `unchoke` message. Ascending.
    public var newlyUnchoked: [PeerKey]
    /// Peers unchoked now that should get a `choke` message. Ascending.
    public var newlyChoked: [PeerKey]

    public init(unchoked: [PeerKey], optimistic: [PeerKey], newlyUnchoked: [PeerKey], newlyChoked: [PeerKey]) {
        self.unchoked = unchoked
        self.optimistic = optimistic
        self.newlyUnchoked = newlyUnchoked
        self.newlyChoked = newlyChoked
    }
}
