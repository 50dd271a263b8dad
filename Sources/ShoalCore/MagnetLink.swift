/// A magnet link: a torrent named by its info-hash, to be fetched without the .torrent file
/// (BEP 9, "magnet URI format"), with the select-only file list of BEP 53.
///
///     magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker-url>&x.pe=<peer-address>
///     magnet:?xt=urn:btmh:<tagged-info-hash>&dn=<name>&tr=<tracker-url>&x.pe=<peer-address>
///     magnet:?xt=urn:btih:HASH&dn=NAME&tr=TRACKER&so=0,2,4,6-8
///
/// ## Parsing
/// `init(parsing:)` reads the query after `magnet:?` as `&`-separated `key=value` pairs.
/// - Keys and values are percent-decoded strictly: `%` must be followed by two hexadecimal digits,
///   and the decoded bytes must be valid UTF-8.
/// - `+` stays `+`. RFC 3986 gives `+` no meaning in a query; only HTML form encoding turns it
///   into a space, and magnet links are not form submissions. (libtorrent reads `+` as a space,
///   Transmission does not; `uri` therefore always writes `+` as `%2B`, which both read alike.)
/// - Characters that RFC 3986 would want escaped (a space, `[`, `]`, non-ASCII letters) are
///   accepted raw, as links pasted from web pages often carry them; ASCII control characters are
///   not. Spaces, tabs and line breaks around the whole link are ignored.
/// - A `#` ends the query; the fragment after it is ignored (RFC 3986, section 3.5).
/// - Empty pairs (`&&`, a trailing `&`) are skipped; a pair without `=` has an empty value.
/// - Keys are case-sensitive, as in libtorrent and Transmission. `xt`, `dn`, `tr`, `ws` and
///   `x.pe` are also recognised in numbered form (`xt.1`, `tr.2`, ...), taken in the order written.
///
/// ## Printing
/// `uri` writes `xt` (v1 as 40 lowercase hex digits, v2 as the `1220` multihash), `dn`, each `tr`,
/// each `ws`, each `x.pe`, one `so`, then `otherParameters`, all in stored order. It escapes every
/// byte except ASCII letters, digits, `-._~` and `:/?@,` so that `MagnetLink(parsing: link.uri)`
/// gives `link` back, for every link whose
/// - `infoHashes` is not empty,
/// - `selectOnly` ranges lie within `0...MagnetLink.maxFileIndex`, and
/// - `otherParameters` use none of the recognised keys (see `Parameter`).
///
/// Every value `init(parsing:)` returns meets these conditions.
public struct MagnetLink: Hashable, Sendable, CustomStringConvertible {
    /// A parameter that `MagnetLink` does not interpret, kept so that it can be printed again.
    ///
    /// The parser never puts a recognised parameter here: `dn`, `tr`, `ws`, `x.pe` (and their
    /// numbered forms), `so`, or an `xt` (or `xt.N`) whose value begins with `urn:btih:` or
    /// `urn:btmh:` in any case.
    /// An `xt` naming another kind of hash (`urn:sha1:`, `urn:ed2k:`, ...) is kept here.
    public struct Parameter: Hashable, Sendable {
        /// The key, percent-decoded.
        public var key: String
        /// The value, percent-decoded; empty if the link had no `=` after the key.
        public var value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The longest link, in UTF-8 bytes, that `init(parsing:)` reads (64 KiB).
    public static let maxLength = 64 * 1024
    /// The most `&`-separated parameters that `init(parsing:)` reads.
    public static let maxParameterCount = 1024
    /// The largest file index accepted in `so` (BEP 53). A bound well below `Int.max` keeps
    /// `ClosedRange.count` and index arithmetic of callers from overflowing.
    public static let maxFileIndex = Int(Int32.max)

    /// The torrent's info-hashes from every `xt=urn:btih:` (v1) and `xt=urn:btmh:` (v2) in order of
    /// appearance, without repeats. A hybrid torrent's link has one of each (BEP 9, BEP 52).
    public var infoHashes: [InfoHash]
    /// The display name (`dn`) to show until the metadata arrives. Only the first `dn` is kept.
    public var displayName: String?
    /// Tracker URLs (`tr`) in the order written; the client should use the DHT if there are none.
    public var trackers: [String]
    /// Web seed URLs (`ws`, BEP 19) in the order written.
    public var webSeeds: [String]
    /// Peer addresses (`x.pe`) as written: `hostname:port`, `ipv4:port` or `[ipv6]:port`.
    public var peers: [String]
    /// File indices to download (`so`, BEP 53): zero-based inclusive ranges in the order written,
    /// neither merged nor sorted. Empty means no selection was given (download everything).
    public var selectOnly: [ClosedRange<Int>]
    /// Every other parameter, in the order written.
    public var otherParameters: [Parameter]

    /// A link built from its parts, e.g. for a torrent just created. See the type's documentation
    /// for what `uri` needs to print a link that parses back to the same value.
    public init(
        infoHashes: [InfoHash],
        displayName: String? = nil,
        trackers: [String] = [],
        webSeeds: [String] = [],
        peers: [String] = [],
        selectOnly: [ClosedRange<Int>] = [],
        otherParameters: [Parameter] = []
    ) {
        self.infoHashes = infoHashes
        self.displayName = displayName
        self.trackers = trackers
        self.webSeeds = webSeeds
        self.peers = peers
        self.selectOnly = selectOnly
        self.otherParameters = otherParameters
    }

    /// The first v1 info-hash, if any.
    public var v1InfoHash: Digest20? {
        for hash in infoHashes {
            if case .v1(let digest) = hash { return digest }
        }
        return nil
    }

    /// The first v2 info-hash, if any.
    public var v2InfoHash: Digest32? {
        for hash in infoHashes {
            if case .v2(let digest) = hash { return digest }
        }
        return nil
    }

    public var description: String { uri }
}

// MARK: - Errors

/// Why a text is not an acceptable magnet link.
public struct MagnetLinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The text does not begin with `magnet:?`.
        case notAMagnetLink
        /// The text is longer than `MagnetLink.maxLength` UTF-8 bytes (its length is given).
        case tooLong(Int)
        /// The text has more than `MagnetLink.maxParameterCount` parameters.
        case tooManyParameters
        /// An ASCII control character at this UTF-8 byte offset of the trimmed text.
        case badCharacter(at: Int)
        /// A `%` at this UTF-8 byte offset of the trimmed text is not followed by two hex digits.
        case badPercentEncoding(at: Int)
        /// The parameter starting at this UTF-8 byte offset of the trimmed text decodes to bytes
        /// that are not UTF-8.
        case badUTF8(at: Int)
        /// No `xt=urn:btih:` or `xt=urn:btmh:` parameter.
        case missingInfoHash
        /// An `xt` value that begins `urn:btih:` or `urn:btmh:` but has no valid hash after it.
        case badInfoHash(String)
        /// An `so` value that is not a comma-separated list of indices and `a-b` ranges (BEP 53).
        case badSelectOnly(String)
    }

    public var code: Code

    public init(_ code: Code) {
        self.code = code
    }

    public var description: String {
        switch code {
        case .notAMagnetLink:
            "not a magnet link: it must begin with \"magnet:?\""
        case .tooLong(let length):
            "magnet link too long: \(length) bytes, at most \(MagnetLink.maxLength) are accepted"
        case .tooManyParameters:
            "magnet link has more than \(MagnetLink.maxParameterCount) parameters"
        case .badCharacter(let offset):
            "magnet link has a control character at byte \(offset)"
        case .badPercentEncoding(let offset):
            "magnet link has a '%' not followed by two hexadecimal digits at byte \(offset)"
        case .badUTF8(let offset):
            "magnet link parameter at byte \(offset) does not decode to UTF-8 text"
        case .missingInfoHash:
            "magnet link has no info-hash (no xt=urn:btih: or xt=urn:btmh: parameter)"
        case .badInfoHash(let value):
            "magnet link has a bad info-hash \"\(Self.excerpt(value))\": expected urn:btih: with 40 hex "
                + "digits or 32 base32 characters, or urn:btmh:1220 with 64 hex digits"
        case .badSelectOnly(let value):
            "magnet link has a bad select-only list \"\(Self.excerpt(value))\": expected file indices "
                + "and ranges like 0,2,4-6 (at most \(MagnetLink.maxFileIndex))"
        }
    }

    /// At most 80 characters of `value`, so that hostile input cannot make a huge message.
    private static func excerpt(_ value: String) -> String {
        value.count > 80 ? String(value.prefix(80)) + "…" : value
    }
}

// MARK: - Parsing

extension MagnetLink {
    /// Parses a magnet link (BEP 9, BEP 53). See the type's documentation for the rules.
    ///
    /// Input is bounded: at most `maxLength` bytes and `maxParameterCount` parameters.
    public init(parsing text: String) throws(MagnetLinkError) {
        let totalLength = text.utf8.count
        guard totalLength <= Self.maxLength else { throw MagnetLinkError(.tooLong(totalLength)) }

        var bytes = Array(text.utf8)
        while let last = bytes.last, Self.isOuterWhitespace(last) {
            bytes.removeLast()
        }
        let start = bytes.firstIndex { !Self.isOuterWhitespace($0) } ?? bytes.endIndex
        bytes.removeFirst(start)

        if let offset = bytes.firstIndex(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw MagnetLinkError(.badCharacter(at: offset))
        }

        let scheme = Array("magnet:?".utf8)
        guard bytes.count >= scheme.count,
            zip(bytes, scheme).allSatisfy({ Self.asciiLowercased($0) == $1 })
        else { throw MagnetLinkError(.notAMagnetLink) }

        var queryEnd = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
        queryEnd = max(queryEnd, scheme.count)

        var infoHashes: [InfoHash] = []
        var displayName: String?
        var trackers: [String] = []
        var webSeeds: [String] = []
        var peers: [String] = []
        var selectOnly: [ClosedRange<Int>] = []
        var otherParameters: [Parameter] = []

        var parameterCount = 0
        var position = scheme.count
        while position < queryEnd {
            let pairEnd = bytes[position..<queryEnd].firstIndex(of: UInt8(ascii: "&")) ?? queryEnd
            defer { position = pairEnd + 1 }
            if pairEnd == position { continue }
            parameterCount += 1
            guard parameterCount <= Self.maxParameterCount else {
                throw MagnetLinkError(.tooManyParameters)
            }

            let equals = bytes[position..<pairEnd].firstIndex(of: UInt8(ascii: "="))
            let key = try Self.percentDecoded(bytes, position..<(equals ?? pairEnd), pairStart: position)
            let value: String
            if let equals {
                value = try Self.percentDecoded(bytes, (equals + 1)..<pairEnd, pairStart: position)
            } else {
                value = ""
            }

            switch Self.recognisedKey(key) {
            case "xt":
                if let hash = try Self.infoHash(fromTopic: value) {
                    if !infoHashes.contains(hash) { infoHashes.append(hash) }
                } else {
                    otherParameters.append(Parameter(key: key, value: value))
                }
            case "dn":
                if displayName == nil { displayName = value }
            case "tr":
                trackers.append(value)
            case "ws":
                webSeeds.append(value)
            case "x.pe":
                peers.append(value)
            case "so":
                selectOnly += try Self.selectOnlyRanges(value)
            default:
                otherParameters.append(Parameter(key: key, value: value))
            }
        }

        guard !infoHashes.isEmpty else { throw MagnetLinkError(.missingInfoHash) }
        self.init(
            infoHashes: infoHashes,
            displayName: displayName,
            trackers: trackers,
            webSeeds: webSeeds,
            peers: peers,
            selectOnly: selectOnly,
            otherParameters: otherParameters
        )
    }

    /// The recognised key that `key` names (`tr.3` names `tr`), or nil.
    private static func recognisedKey(_ key: String) -> String? {
        if key == "so" { return key }
        for base in ["xt", "dn", "tr", "ws", "x.pe"] {
            if key == base { return base }
            let utf8 = key.utf8
            let baseCount = base.utf8.count
            guard utf8.count > baseCount + 1, utf8.starts(with: base.utf8) else { continue }
            let suffix = utf8.dropFirst(baseCount)
            if suffix.first == UInt8(ascii: "."),
                suffix.dropFirst().allSatisfy({ UInt8(ascii: "0") <= $0 && $0 <= UInt8(ascii: "9") })
            {
                return base
            }
        }
        return nil
    }

    /// The info-hash of an `xt` value (BEP 9): `urn:btih:` with 40 hex digits or 32 base32
    /// characters, or `urn:btmh:` with a hex multihash of SHA2-256 (code 0x12, length 0x20).
    /// Nil for an exact topic of another kind; an error for a malformed BitTorrent one.
    private static func infoHash(fromTopic value: String) throws(MagnetLinkError) -> InfoHash? {
        let utf8 = Array(value.utf8)
        let prefixLength = "urn:btih:".utf8.count
        guard utf8.count >= prefixLength else { return nil }
        let prefix = String(decoding: utf8[..<prefixLength].map(asciiLowercased), as: UTF8.self)
        let hash = String(decoding: utf8[prefixLength...], as: UTF8.self)
        switch prefix {
        case "urn:btih:":
            if hash.utf8.count == 40, let digest = Digest20(hex: hash) {
                return .v1(digest)
            }
            if hash.utf8.count == 32, let bytes = Base32.decode(hash), let digest = Digest20(bytes: bytes) {
                return .v1(digest)
            }
            throw MagnetLinkError(.badInfoHash(value))
        case "urn:btmh:":
            if hash.utf8.count == 68, let bytes = Hex.decode(hash), bytes.starts(with: [0x12, 0x20]),
                let digest = Digest32(bytes: bytes.dropFirst(2))
            {
                return .v2(digest)
            }
            throw MagnetLinkError(.badInfoHash(value))
        default:
            return nil
        }
    }

    /// The ranges of a BEP 53 `so` value such as `0,2,4-6`.
    private static func selectOnlyRanges(_ value: String) throws(MagnetLinkError) -> [ClosedRange<Int>] {
        var ranges: [ClosedRange<Int>] = []
        for item in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let bounds = item.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                let lower = fileIndex(bounds[bounds.startIndex]),
                let upper = fileIndex(bounds[bounds.endIndex - 1]),
                lower <= upper
            else { throw MagnetLinkError(.badSelectOnly(value)) }
            ranges.append(lower...upper)
        }
        return ranges
    }

    /// A file index of decimal digits only, at most `maxFileIndex`.
    private static func fileIndex(_ digits: Substring.UTF8View.SubSequence) -> Int? {
        guard !digits.isEmpty else { return nil }
        var result = 0
        for digit in digits {
            guard UInt8(ascii: "0") <= digit, digit <= UInt8(ascii: "9") else { return nil }
            result = result * 10 + Int(digit - UInt8(ascii: "0"))
            guard result <= maxFileIndex else { return nil }
        }
        return result
    }

    /// Strict percent-decoding of `bytes[range]` into UTF-8 text; `+` is kept as it is.
    private static func percentDecoded(
        _ bytes: [UInt8], _ range: Range<Int>, pairStart: Int
    ) throws(MagnetLinkError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(range.count)
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < range.upperBound,
                    let high = hexValue(bytes[index + 1]),
                    let low = hexValue(bytes[index + 2])
                else { throw MagnetLinkError(.badPercentEncoding(at: index)) }
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(byte)
                index += 1
            }
        }
        guard let text = String(validating: output, as: UTF8.self) else {
            throw MagnetLinkError(.badUTF8(at: pairStart))
        }
        return text
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isOuterWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
            || byte == UInt8(ascii: "\r")
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        UInt8(ascii: "A") <= byte && byte <= UInt8(ascii: "Z") ? byte + 0x20 : byte
    }
}

// MARK: - Printing

extension MagnetLink {
    /// The link as text: `magnet:?xt=...`, with keys and values percent-encoded (see the type's
    /// documentation for the order and the characters left unescaped).
    public var uri: String {
        var output = Array("magnet:?".utf8)
        var first = true
        func append(_ key: String, _ value: String) {
            if !first { output.append(UInt8(ascii: "&")) }
            first = false
            Self.percentEncode(key, into: &output)
            output.append(UInt8(ascii: "="))
            Self.percentEncode(value, into: &output)
        }
        for hash in infoHashes {
            switch hash {
            case .v1(let digest): append("xt", "urn:btih:" + digest.hex)
            case .v2(let digest): append("xt", "urn:btmh:1220" + digest.hex)
            }
        }
        if let displayName { append("dn", displayName) }
        for tracker in trackers { append("tr", tracker) }
        for webSeed in webSeeds { append("ws", webSeed) }
        for peer in peers { append("x.pe", peer) }
        if !selectOnly.isEmpty {
            let list = selectOnly.map { range in
                range.lowerBound == range.upperBound
                    ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
            }
            append("so", list.joined(separator: ","))
        }
        for parameter in otherParameters { append(parameter.key, parameter.value) }
        return String(decoding: output, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Appends `text` with every byte escaped except ASCII letters, digits and `-._~:/?@,`.
    private static func percentEncode(_ text: String, into output: inout [UInt8]) {
        for byte in text.utf8 {
            if isUnescaped(byte) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            }
        }
    }

    private static func isUnescaped(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
            UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "@"), UInt8(ascii: ","):
            true
        default:
            false
        }
    }
}
