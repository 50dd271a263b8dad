import NIOCore

/// What a ``PeerConnection/StateMachine`` asks its runtime to do, in order.
public enum PeerAction: Hashable, Sendable {
    /// Write our BEP 3 handshake.
    case sendHandshake(Handshake)
    /// Write a message (for a `piece`, the runtime may write ``PeerMessage/writePieceHeader(_:to:)``
    /// and then the block's own buffer, to avoid copying it).
    case send(PeerMessage)
    /// Close the connection, for this reason; its ``WireError/disposition`` says whether to ban
    /// the peer. Nothing follows it.
    case close(WireError)
    /// Tell the torrent.
    case emit(PeerEvent)
}
