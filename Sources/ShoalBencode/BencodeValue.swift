/// An owned bencoded value, for building documents to encode.
///
/// Dictionaries have no order here: ``BencodeEncoder`` always writes their keys sorted byte-wise,
/// which is the canonical form BEP 3 asks for.
public enum BencodeValue: Hashable, Sendable {
    case integer(Int64)
    case string([UInt8])
    case list([BencodeValue])
    case dictionary([[UInt8]: BencodeValue])

    /// A string value from text (stored as its UTF-8 bytes).
    public static func text(_ text: String) -> BencodeValue { .string(Array(text.utf8)) }

    /// A dictionary from text keys.
    public static func dictionary(_ entries: [String: BencodeValue]) -> BencodeValue {
        var dictionary: [[UInt8]: BencodeValue] = [:]
        dictionary.reserveCapacity(entries.count)
        for (key, value) in entries { dictionary[Array(key.utf8)] = value }
        return .dictionary(dictionary)
    }

    /// The value for a text key, if this is a dictionary that has it.
    public subscript(key: String) -> BencodeValue? {
        guard case .dictionary(let dictionary) = self else { return nil }
        return dictionary[Array(key.utf8)]
    }

    /// The canonical encoding of this value.
    public var encoded: [UInt8] { BencodeEncoder.encode(self) }
}

extension BencodeValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
}

extension BencodeValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
}

extension BencodeValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: BencodeValue...) { self = .list(elements) }
}

extension BencodeValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, BencodeValue)...) {
        var dictionary: [[UInt8]: BencodeValue] = [:]
        for (key, value) in elements { dictionary[Array(key.utf8)] = value }
        self = .dictionary(dictionary)
    }
}
