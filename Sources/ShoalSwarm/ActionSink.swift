import NIOCore
import ShoalWire

/// The actions one event of ``TorrentStateMachine`` produces, collected in order as they are decided.
///
/// Messages to a peer that follow one another are encoded into one buffer and leave as one `send`: a refill
/// of a peer's request queue is one allocation and one channel write instead of one per request. A block still
/// goes out from its own buffer, right after its header, so it is never copied. Any other action first closes
/// the buffer being filled, so the order of everything is the order in which it was decided.
struct ActionSink {
    private var actions: [TorrentAction] = []
    /// Encoded messages for `pendingKey` that are not yet a `send`.
    private var pending = ByteBuffer()
    private var pendingKey: PeerKey?

    /// Room for a refill of 16 requests (17 bytes each) without growing.
    private static let pendingCapacity = 512

    /// A sink that starts empty.
    init() {}

    /// A sink that continues `actions` (it takes them; ``finish()`` gives them back with what was added).
    init(continuing actions: inout [TorrentAction]) {
        swap(&self.actions, &actions)
    }

    /// Adds an action after everything collected so far.
    mutating func append(_ action: TorrentAction) {
        flush()
        actions.append(action)
    }

    /// Sends a message to a peer: appended to the messages for it that came just before, or a new buffer.
    mutating func send(_ message: PeerMessage, to key: PeerKey) {
        guard case .piece(let piece, let offset, let block) = message else {
            startPending(for: key, capacity: max(Self.pendingCapacity, message.encodedLength))
            message.write(to: &pending)
            return
        }
        // The header joins the messages before it; the block follows from its own buffer.
        startPending(for: key, capacity: PeerMessage.pieceHeaderLength)
        let request = BlockRequest(piece: piece, offset: offset, length: UInt32(truncatingIfNeeded: block.readableBytes))
        PeerMessage.writePieceHeader(request, to: &pending)
        flush()
        actions.append(.send(key, block))
    }

    /// Sends our handshake to a peer (what follows it at once goes in the same buffer).
    mutating func sendHandshake(_ handshake: Handshake, to key: PeerKey) {
        startPending(for: key, capacity: Self.pendingCapacity)
        handshake.write(to: &pending)
    }

    /// Everything collected, in order.
    mutating func finish() -> [TorrentAction] {
        flush()
        var finished: [TorrentAction] = []
        swap(&finished, &actions)
        return finished
    }

    /// Makes `pending` the buffer of `key`'s messages, a new one with room for `capacity` bytes unless it
    /// already is.
    private mutating func startPending(for key: PeerKey, capacity: Int) {
        guard pendingKey != key else { return }
        flush()
        pendingKey = key
        pending = ByteBufferAllocator().buffer(capacity: capacity)
    }

    /// Turns the messages being collected into a `send`.
    private mutating func flush() {
        guard let key = pendingKey else { return }
        actions.append(.send(key, pending))
        // Let go of the buffer, so that the next one is not written through a shared reference (a copy).
        pending = ByteBuffer()
        pendingKey = nil
    }
}
