import ShoalBencode

/// Why a .torrent file was refused: what was wrong, in which field, at which byte.
public struct MetainfoError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// Not valid bencode.
        case bencode(BencodeError)
        /// A required field is absent.
        case missing
        /// A field has the wrong kind of value.
        case wrongType(expected: BencodeKind)
        /// A field's value is out of range or inconsistent with others.
        case invalid(String)
        /// A file path that could escape the download directory or break a file system.
        case unsafePath(TorrentPathError)
    }

    public var code: Code
    /// Where in the document, as a key path: `info.files[3].path[1]`.
    public var field: String
    /// Offset of the field's value in the file, when known.
    public var offset: Int?

    public init(_ code: Code, field: String, offset: Int? = nil) {
        self.code = code
        self.field = field
        self.offset = offset
    }

    public var description: String {
        let place = field.isEmpty ? "" : " in \(field)"
        let at = offset.map { " at byte \($0)" } ?? ""
        switch code {
        case .bencode(let error): return "not a valid torrent: \(error)"
        case .missing: return "missing field \(field)"
        case .wrongType(let expected): return "\(field) should be a \(expected)\(at)"
        case .invalid(let reason): return "invalid torrent: \(reason)\(place)\(at)"
        case .unsafePath(let error): return "unsafe file path\(place)\(at): \(error)"
        }
    }
}
