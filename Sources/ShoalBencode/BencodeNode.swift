/// One value inside a ``BencodeDocument``: a cheap handle (the document and a token index).
///
/// Accessors never copy more than they return: ``bytes`` is a slice of the original input,
/// ``span`` and ``encodedBytes`` give the value's exact encoding.
public struct BencodeNode: Sendable {
    let storage: BencodeDocument.Storage
    let index: Int

    private var token: BencodeDocument.Token { storage.tokens[index] }

    /// The kind of value.
    public var kind: BencodeKind { token.kind }

    /// Where the value's encoding lies in the document's bytes.
    public var span: Range<Int> { token.start..<token.end }

    /// The value exactly as encoded in the input (for the info dictionary: what the info-hash covers).
    public var encodedBytes: ArraySlice<UInt8> { storage.bytes[span] }

    /// The integer, if this is one.
    public var integer: Int64? { kind == .integer ? token.payload : nil }

    /// The string's content, if this is a string.
    public var bytes: ArraySlice<UInt8>? {
        guard kind == .string else { return nil }
        return storage.bytes[Int(token.payload)..<token.end]
    }

    /// Offset of the string's first content byte (for a string), or of the value's first byte.
    public var contentOffset: Int { kind == .string ? Int(token.payload) : token.start }

    /// The string's content as UTF-8 text, if this is a string and valid UTF-8.
    public var string: String? {
        guard let bytes else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The number of elements of a list or entries of a dictionary; zero for scalars.
    public var count: Int {
        switch kind {
        case .list, .dictionary: Int(token.payload)
        case .integer, .string: 0
        }
    }

    /// The elements, if this is a list.
    public var list: [BencodeNode]? {
        guard kind == .list else { return nil }
        var result: [BencodeNode] = []
        result.reserveCapacity(count)
        var child = index + 1
        let end = token.next
        while child < end {
            result.append(BencodeNode(storage: storage, index: child))
            child = storage.tokens[child].next
        }
        return result
    }

    /// The entries in their order in the input, if this is a dictionary.
    public var entries: [(key: BencodeNode, value: BencodeNode)]? {
        guard kind == .dictionary else { return nil }
        var result: [(key: BencodeNode, value: BencodeNode)] = []
        result.reserveCapacity(count)
        var child = index + 1
        let end = token.next
        while child < end {
            let value = child + 1
            result.append((BencodeNode(storage: storage, index: child), BencodeNode(storage: storage, index: value)))
            child = storage.tokens[value].next
        }
        return result
    }

    /// The value for `key`, if this is a dictionary that has it.
    public subscript(key: String) -> BencodeNode? {
        var key = key
        return key.withUTF8 { self[bytes: $0] }
    }

    /// The value for a key given as bytes, if this is a dictionary that has it.
    public subscript<Key: Collection<UInt8>>(bytes key: Key) -> BencodeNode? {
        guard kind == .dictionary else { return nil }
        var child = index + 1
        let end = token.next
        let keyCount = key.count
        while child < end {
            let keyToken = storage.tokens[child]
            let content = Int(keyToken.payload)..<keyToken.end
            if content.count == keyCount && storage.bytes[content].elementsEqual(key) {
                return BencodeNode(storage: storage, index: child + 1)
            }
            child = storage.tokens[child + 1].next
        }
        return nil
    }

    /// An owned copy of this value and everything below it.
    public var value: BencodeValue {
        switch kind {
        case .integer: return .integer(token.payload)
        case .string: return .string(Array(bytes ?? []))
        case .list: return .list((list ?? []).map(\.value))
        case .dictionary:
            var dictionary: [[UInt8]: BencodeValue] = [:]
            for entry in entries ?? [] {
                dictionary[Array(entry.key.bytes ?? [])] = entry.value.value
            }
            return .dictionary(dictionary)
        }
    }
}
