/// The id byte that follows a message's length prefix (BEP 3 "peer messages", BEP 5 `port`,
/// BEP 6 fast extension, BEP 10 `extended`).
enum PeerMessageID: UInt8, CaseIterable, Sendable {
    case choke = 0
    case unchoke = 1
    case interested = 2
    case notInterested = 3
    case have = 4
    case bitfield = 5
    case request = 6
    case piece = 7
    case cancel = 8
    case port = 9
    case suggestPiece = 13
    case haveAll = 14
    case haveNone = 15
    case rejectRequest = 16
    case allowedFast = 17
    case extended = 20

    /// The exact length prefix of a message that has a fixed size; nil for variable-size ones.
    var fixedLength: Int? {
        switch self {
        case .choke, .unchoke, .interested, .notInterested, .haveAll, .haveNone: 1
        case .have, .suggestPiece, .allowedFast: 5
        case .request, .cancel, .rejectRequest: 13
        case .port: 3
        case .bitfield, .piece, .extended: nil
        }
    }

    /// Whether BEP 6 defines it (only valid when both sides set the fast extension bit).
    var isFastExtension: Bool {
        switch self {
        case .suggestPiece, .haveAll, .haveNone, .rejectRequest, .allowedFast: true
        default: false
        }
    }
}
