import NIOCore
import ShoalCore

/// The BEP 3 handshake: byte 19, "BitTorrent protocol", eight reserved bytes, the 20-byte info-hash
/// and the 20-byte peer id (68 bytes).
///
/// It decodes in two steps, as an incoming connection needs: ``Head`` (the first 48 bytes) names
/// the torrent, so the receiver can find it and answer with its own handshake before the peer id
/// arrives (BEP 3: "the recipient may wait for the initiator's handshake ... however, the recipient
/// must respond as soon as it sees the info_hash part of the handshake"). ``decodePeerID(from:)``
/// reads the remaining 20 bytes; ``decode(from:)`` reads all 68 at once.
public struct Handshake: Hashable, Sendable, CustomStringConvertible {
    /// `"BitTorrent protocol"`, the protocol string.
    public static let protocolName: [UInt8] = Array("BitTorrent protocol".utf8)
    /// The whole handshake's length: 68 bytes.
    public static let length = 68

    /// The first 48 bytes: protocol string, reserved bits and info-hash.
    public struct Head: Hashable, Sendable {
        /// The head's length: 48 bytes.
        public static let length = 48

        public var reserved: ReservedBits
        public var infoHash: Digest20

        public init(reserved: ReservedBits, infoHash: Digest20) {
            self.reserved = reserved
            self.infoHash = infoHash
        }

        /// Reads the head when 48 bytes are readable; nil (consuming nothing) while fewer are.
        ///
        /// The protocol string is checked as soon as its bytes arrive, so a connection that is not
        /// BitTorrent (or is encrypted) fails at its first wrong byte, with that byte's offset.
        public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Head? {
            let readable = buffer.readableBytes
            let start = buffer.readerIndex
            if readable >= 1, buffer.getInteger(at: start, as: UInt8.self) != UInt8(Handshake.protocolName.count) {
                throw WireError(.invalidProtocolName, offset: 0)
            }
            for index in 0..<max(0, min(readable - 1, Handshake.protocolName.count)) {
                if buffer.getInteger(at: start + 1 + index, as: UInt8.self) != Handshake.protocolName[index] {
                    throw WireError(.invalidProtocolName, offset: 1 + index)
                }
            }
            guard readable >= length else { return nil }
            buffer.moveReaderIndex(forwardBy: 1 + Handshake.protocolName.count)
            let reserved = buffer.readInteger(as: UInt64.self)!
            let hash = buffer.readBytes(length: 20)!
            return Head(reserved: ReservedBits(rawValue: reserved), infoHash: Digest20(bytes: hash)!)
        }

        /// Writes the 48 bytes.
        public func write(to buffer: inout ByteBuffer) {
            buffer.writeInteger(UInt8(Handshake.protocolName.count))
            buffer.writeBytes(Handshake.protocolName)
            buffer.writeInteger(reserved.rawValue)
            buffer.writeBytes(infoHash.bytes)
        }
    }

    public var reserved: ReservedBits
    public var infoHash: Digest20
    public var peerID: PeerID

    public init(reserved: ReservedBits, infoHash: Digest20, peerID: PeerID) {
        self.reserved = reserved
        self.infoHash = infoHash
        self.peerID = peerID
    }

    public init(head: Head, peerID: PeerID) {
        self.init(reserved: head.reserved, infoHash: head.infoHash, peerID: peerID)
    }

    /// The first 48 bytes.
    public var head: Head { Head(reserved: reserved, infoHash: infoHash) }

    /// Reads the last 20 bytes (after ``Head/decode(from:)``); nil, consuming nothing, while fewer
    /// are readable. Any 20 bytes are a peer id.
    public static func decodePeerID(from buffer: inout ByteBuffer) -> PeerID? {
        guard let bytes = buffer.readBytes(length: 20) else { return nil }
        return PeerID(bytes: bytes)
    }

    /// Reads a whole handshake when 68 bytes are readable; nil, consuming nothing, while fewer
    /// are (a wrong protocol string fails as soon as it arrives).
    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Handshake? {
        var peek = buffer
        guard let head = try Head.decode(from: &peek), let peerID = decodePeerID(from: &peek) else { return nil }
        buffer = peek
        return Handshake(head: head, peerID: peerID)
    }

    /// Writes the 68 bytes.
    public func write(to buffer: inout ByteBuffer) {
        head.write(to: &buffer)
        buffer.writeBytes(peerID.bytes)
    }

    public var description: String { "handshake \(infoHash) from \(peerID) \(reserved)" }
}
