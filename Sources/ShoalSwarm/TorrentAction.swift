import NIOCore
import ShoalCore

/// What a runtime (NIO or the simulator) must do for a ``TorrentStateMachine``.
public enum TorrentAction: Hashable, Sendable {
    /// Open a TCP connection to `address` for peer `key`; answer with `connectionEstablished` or
    /// `connectionFailed`.
    case connect(PeerKey, PeerAddress)
    /// Write these bytes to the peer's connection.
    case send(PeerKey, ByteBuffer)
    /// Close the peer's connection (the state machine has already forgotten the peer).
    case close(PeerKey)
    /// Never accept this address again (it sent bad data or attacked us).
    case ban(PeerAddress)
    /// Write a received block to storage; answer with `blockWritten`.
    case write(Block, ByteBuffer)
    /// Read a block from storage for the peer that asked; answer with `blockRead`.
    case read(PeerKey, Block)
    /// Answer with `blockSent` once every byte written to the peer's connection so far has left (handed to
    /// the network): the block just written is out, and another may be read for the peer.
    case notifySent(PeerKey, Block)
    /// Hash a piece whose every block is written; answer with `pieceHashed`.
    case hash(piece: Int)
    /// A piece passed its hash check (for resume data and progress).
    case verified(piece: Int)
    /// Every wanted piece is verified.
    case completed
}
