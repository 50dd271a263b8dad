import ShoalBencode

/// A bencoded value together with its key path, so that every read of a torrent's field can say
/// exactly which field was wrong and where it lies in the file.
struct MetainfoField {
    let node: BencodeNode
    let path: String

    init(_ node: BencodeNode, path: String) {
        self.node = node
        self.path = path
    }

    func error(_ code: MetainfoError.Code) -> MetainfoError {
        MetainfoError(code, field: path, offset: node.span.lowerBound)
    }

    func child(_ key: String) -> MetainfoField? {
        node[key].map { MetainfoField($0, path: path.isEmpty ? key : "\(path).\(key)") }
    }

    func required(_ key: String) throws(MetainfoError) -> MetainfoField {
        guard let field = child(key) else {
            throw MetainfoError(.missing, field: path.isEmpty ? key : "\(path).\(key)", offset: node.span.lowerBound)
        }
        return field
    }

    /// `alternate` when present (BitComet's `name.utf-8`, `path.utf-8`), else the required `key`.
    func required(_ key: String, preferring alternate: String) throws(MetainfoError) -> MetainfoField {
        if let field = child(alternate) { return field }
        return try required(key)
    }

    func dictionary() throws(MetainfoError) -> MetainfoField {
        guard node.kind == .dictionary else { throw error(.wrongType(expected: .dictionary)) }
        return self
    }

    func list() throws(MetainfoError) -> [MetainfoField] {
        guard let elements = node.list else { throw error(.wrongType(expected: .list)) }
        return elements.enumerated().map { MetainfoField($1, path: "\(path)[\($0)]") }
    }

    func entries() throws(MetainfoError) -> [(key: BencodeNode, value: MetainfoField)] {
        guard let entries = node.entries else { throw error(.wrongType(expected: .dictionary)) }
        return entries.map { entry in
            let name = entry.key.string.map { TorrentPathError.printable($0) } ?? "<binary>"
            return (entry.key, MetainfoField(entry.value, path: "\(path)[\(name)]"))
        }
    }

    func integer() throws(MetainfoError) -> Int64 {
        guard let value = node.integer else { throw error(.wrongType(expected: .integer)) }
        return value
    }

    func bytes() throws(MetainfoError) -> ArraySlice<UInt8> {
        guard let value = node.bytes else { throw error(.wrongType(expected: .string)) }
        return value
    }

    /// Text from a string field; bytes that are not UTF-8 are replaced by U+FFFD
    /// (old torrents carry names in legacy encodings).
    func text() throws(MetainfoError) -> String {
        String(decoding: try bytes(), as: UTF8.self)
    }

    /// Whether a string field is valid UTF-8.
    var isValidUTF8: Bool { node.string != nil }
}
