import NIOCore

/// Message boundaries in the byte stream of a peer connection, so that received bytes are decoded where
/// they lie and only a message split across two reads is ever copied.
///
/// A connection's bytes arrive in reads of any size. Decoding straight from each read makes every block a
/// slice of the buffer the socket filled; only the message cut by the end of a read has to wait, in a
/// small buffer of its own (``keepPartial(_:handshake:)``), for the bytes of the next read that complete it
/// (``complete(_:from:handshake:)``). Appending whole reads to what waits instead would copy every byte.
///
/// The first message of a connection is the 68-byte handshake (`handshake: true`); every later one is
/// its 4-byte length prefix and that many bytes. Neither function judges a length: the decoder refuses one
/// no message may have as soon as its prefix is there, before its body is buffered.
public enum PeerMessageFraming {
    /// The whole length of the message (or handshake) that `buffer` starts with, once its prefix is
    /// readable; nil before.
    public static func messageLength(startingAt buffer: ByteBuffer, handshake: Bool) -> Int? {
        if handshake { return Handshake.length }
        guard let declared = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        return 4 + Int(declared)
    }

    /// Moves from the front of `bytes` to the end of `pending` the bytes that complete the message
    /// `pending` starts with (its prefix first, when even that is incomplete), and no more. Returns how
    /// many bytes moved: none when `pending` holds a whole message already (or nothing) or `bytes` is
    /// empty.
    @discardableResult
    public static func complete(_ pending: inout ByteBuffer, from bytes: inout ByteBuffer, handshake: Bool) -> Int {
        let have = pending.readableBytes
        guard have > 0, bytes.readableBytes > 0 else { return 0 }
        let prefix = handshake ? 1 : 4
        let wanted: Int
        if have < prefix {
            wanted = prefix - have
        } else {
            wanted = max(0, messageLength(startingAt: pending, handshake: handshake)! - have)
        }
        let count = min(wanted, bytes.readableBytes)
        guard count > 0, var moved = bytes.readSlice(length: count) else { return 0 }
        pending.writeBuffer(&moved)
        return count
    }

    /// The unread bytes of `partial` (the start of a message the next read completes) in a buffer of
    /// their own, sized for the whole message: the buffer the socket filled is not held on to, and
    /// completing the message appends without growing. A buffer that already fits is kept as it is.
    public static func keepPartial(_ partial: ByteBuffer, handshake: Bool) -> ByteBuffer {
        let have = partial.readableBytes
        guard have > 0 else { return ByteBuffer() }
        // A legal message is at most about 1 MiB (the decoder has refused a longer prefix already); the
        // bound only guards against sizing a buffer from a length nobody checked.
        let whole = min(max(messageLength(startingAt: partial, handshake: handshake) ?? 4, have), 1 << 21)
        if partial.readerIndex == 0 && partial.capacity <= 2 * whole {
            return partial
        }
        var kept = ByteBufferAllocator().buffer(capacity: max(whole, have))
        kept.writeImmutableBuffer(partial)
        return kept
    }
}
