import NIOCore
import ShoalCore

/// What a peer connection tells its torrent (the piece picker, the choker, storage).
public enum PeerEvent: Hashable, Sendable {
    /// The handshake completed: the peer's id and its reserved bits (BEP 3, BEP 6, BEP 10).
    case connected(peerID: PeerID, reserved: ReservedBits)
    /// The peer's pieces are now exactly these: from its `bitfield`, `have all` or `have none`
    /// (BEP 3, BEP 6), from nothing (a peer that skipped the bitfield has no pieces), or from what
    /// it announced before the piece count was known (after ``PeerConnection/StateMachine/setPieceCount(_:now:)``).
    case peerPieces(Bitfield)
    /// The peer completed a piece (BEP 3 `have`); only for a piece it did not have.
    case peerHas(piece: UInt32)
    /// The peer choked us. Without the fast extension, our outstanding requests are dropped
    /// (BEP 3): `returned` lists them, back to the piece picker. With it (BEP 6) they stay
    /// outstanding until the peer answers each with a block or a reject, so `returned` is empty.
    case peerChoked(returned: [BlockRequest])
    /// The peer unchoked us: requests may go out.
    case peerUnchoked
    /// The peer became interested in our pieces.
    case peerInterested
    /// The peer is no longer interested.
    case peerNotInterested
    /// The peer lets us request this piece while choked (BEP 6 `allowed fast`).
    case allowedFast(piece: UInt32)
    /// The peer suggests this piece (BEP 6 `suggest piece`); advisory.
    case suggested(piece: UInt32)
    /// A block we requested arrived (its data a slice of the received bytes).
    case blockReceived(BlockRequest, data: ByteBuffer)
    /// A block we had not requested (or had cancelled without the fast extension) arrived. Not an
    /// error; the torrent may still use the data, or count such blocks against the peer.
    case unexpectedBlock(BlockRequest, data: ByteBuffer)
    /// The peer rejected one of our requests (BEP 6): the block is back with the picker.
    case requestRejected(BlockRequest)
    /// The peer rejected a request we had not sent (or had already seen answered). Reported, not
    /// fatal: see ``PeerConnection/StateMachine``.
    case unexpectedReject(BlockRequest)
    /// Requests that will not be answered, back to the picker: the machine refused to send them,
    /// or the connection closed with them outstanding.
    case requestsReturned([BlockRequest])
    /// The peer asks for a block; answer with ``PeerConnection/StateMachine/sendBlock(_:data:now:)``
    /// or ``PeerConnection/StateMachine/rejectRequest(_:now:)``.
    case blockRequested(BlockRequest)
    /// The peer withdrew a request (its `cancel`, or our choke); do not send that block.
    case requestCancelled(BlockRequest)
    /// The peer has sent no block for the snub timeout while we had requests outstanding.
    case snubbed
    /// A snubbing peer sent a block again.
    case unsnubbed
    /// The peer's BEP 10 extension handshake, merged with its earlier ones (`m` is additive).
    case extensionHandshake(ExtensionHandshake)
    /// A BEP 10 extension message, under the id *we* assigned in our handshake's `m`.
    case extensionMessage(id: UInt8, payload: ByteBuffer)
    /// The peer's DHT port (BEP 5 `port`).
    case dhtPort(UInt16)
}
