/// The four kinds of bencoded value (BEP 3).
public enum BencodeKind: UInt8, Hashable, Sendable {
    case integer
    case string
    case list
    case dictionary
}
