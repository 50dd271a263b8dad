import ShoalBencode

/// Why a peer connection must end: what was wrong, where in the stream, and what to do about it.
///
/// Every error says what the caller should do with the peer (``disposition``): close the
/// connection (the peer may be retried later), or ban it (it is broken or hostile, or it is
/// ourselves; do not dial it again).
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public enum Code: Hashable, Sendable {
        // Handshake (BEP 3 "handshake").
        /// The handshake does not start with byte 19 and "BitTorrent protocol".
        case invalidProtocolName
        /// The peer's info-hash is not the torrent's.
        case infoHashMismatch
        /// The peer's id is our own: we dialled ourselves.
        case connectedToSelf
        /// No handshake arrived in time.
        case handshakeTimeout
        /// A message was fed to the state machine before the handshake.
        case messageBeforeHandshake

        // Framing (BEP 3 "peer messages").
        /// The declared length is over the limit for this message (or for every message, when
        /// ``WireError/messageID`` is nil).
        case messageTooLong(limit: Int)
        /// The declared length is under the minimum for this message.
        case messageTooShort(minimum: Int)
        /// A fixed-size message (or a bitfield of known size) whose declared length is not its size.
        case wrongLength(expected: Int)
        /// A `request`, `cancel` or `reject request` for zero bytes or more than the block limit.
        case invalidBlockLength(UInt32, limit: UInt32)
        /// A bitfield with bits set past the last piece (BEP 3: spare bits are zero).
        case bitfieldSpareBits

        // Semantics.
        /// A piece index past the last piece (`have`, `request`, or a pending bitfield that does
        /// not fit the piece count learned later).
        case pieceIndexOutOfRange(UInt32, pieceCount: Int)
        /// `bitfield`, `have all` or `have none` after the first message (BEP 3, BEP 6: only
        /// immediately after the handshake).
        case lateBitfield
        /// A BEP 6 message from a peer that did not negotiate the fast extension (BEP 6: the
        /// receiver MUST close the connection).
        case fastExtensionNotNegotiated
        /// A BEP 10 `extended` message from a peer that did not negotiate the extension protocol.
        case extensionProtocolNotNegotiated
        /// A BEP 10 extension handshake that is not a bencoded dictionary.
        case invalidExtensionHandshake(BencodeError?)
        /// A BEP 9 `ut_metadata` message that breaks the BEP.
        case invalidMetadataMessage(MetadataMessage.Fault)
        /// A BEP 11 `ut_pex` message that breaks the BEP.
        case invalidPeerExchange(PeerExchangeMessage.Fault)
        /// Nothing was received for the inactivity timeout.
        case inactivityTimeout
        /// The torrent closed the connection for a reason of its own (a hash failure, a duplicate
        /// connection, a seed meeting a seed); the text says which.
        case closedByTorrent(String, ban: Bool)
    }

    /// What the caller should do with the peer.
    public enum Disposition: Hashable, Sendable {
        /// Close the connection; the peer may be retried later.
        case close
        /// Close the connection and do not connect to this peer again.
        case ban
    }

    public var code: Code
    /// The id byte of the message at fault, when known.
    public var messageID: UInt8?
    /// The message's declared length (its 4-byte prefix), when known.
    public var declaredLength: UInt32?
    /// Offset in the byte stream fed to the decoder (or of the handshake) where the fault lies:
    /// the start of the message at fault, or the offending handshake byte.
    public var offset: Int?

    public init(_ code: Code, messageID: UInt8? = nil, declaredLength: UInt32? = nil, offset: Int? = nil) {
        self.code = code
        self.messageID = messageID
        self.declaredLength = declaredLength
        self.offset = offset
    }

    /// What to do with the peer. Ban for what only a broken or hostile peer does (spare bits in
    /// a bitfield, BEP 3) and for a connection to ourselves; close for everything else, since
    /// timeouts and disagreements may be transient or version skew.
    public var disposition: Disposition {
        switch code {
        case .bitfieldSpareBits, .connectedToSelf: .ban
        case .closedByTorrent(_, let ban): ban ? .ban : .close
        default: .close
        }
    }

    public var description: String {
        var what: String
        switch code {
        case .invalidProtocolName: what = "not a BitTorrent handshake"
        case .infoHashMismatch: what = "handshake for another torrent"
        case .connectedToSelf: what = "connected to ourselves"
        case .handshakeTimeout: what = "no handshake in time"
        case .messageBeforeHandshake: what = "message before the handshake"
        case .messageTooLong(let limit): what = "message longer than the limit of \(limit) bytes"
        case .messageTooShort(let minimum): what = "message shorter than its minimum of \(minimum) bytes"
        case .wrongLength(let expected): what = "message length is not \(expected)"
        case .invalidBlockLength(let length, let limit):
            what = "block length \(length) is not in 1...\(limit)"
        case .bitfieldSpareBits: what = "bitfield has spare bits set"
        case .pieceIndexOutOfRange(let index, let count): what = "piece \(index) is out of range (\(count) pieces)"
        case .lateBitfield: what = "bitfield, have all or have none after the first message"
        case .fastExtensionNotNegotiated: what = "fast extension message without the fast extension"
        case .extensionProtocolNotNegotiated: what = "extended message without the extension protocol"
        case .invalidExtensionHandshake(let error):
            what = "invalid extension handshake" + (error.map { " (\($0))" } ?? "")
        case .invalidMetadataMessage(let fault): what = "invalid ut_metadata message: \(fault)"
        case .invalidPeerExchange(let fault): what = "invalid ut_pex message: \(fault)"
        case .inactivityTimeout: what = "peer inactive"
        case .closedByTorrent(let reason, _): what = reason
        }
        if let messageID { what += ", message id \(messageID)" }
        if let declaredLength { what += ", declared length \(declaredLength)" }
        if let offset { what += ", at byte \(offset)" }
        return "peer wire: " + what
    }
}
