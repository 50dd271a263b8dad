import ShoalCore

/// A Local Service Discovery announce (BEP 14): an HTTP-like request in one UDP datagram, multicast to
/// `239.192.152.143:6771` or `[ff15::efc0:988f]:6771`.
///
///     BT-SEARCH * HTTP/1.1\r\n
///     Host: 239.192.152.143:6771\r\n
///     Port: 6881\r\n
///     Infohash: 0123456789abcdef0123456789abcdef01234567\r\n
///     cookie: 5e6f\r\n
///     \r\n
///     \r\n
///
/// Parsing is strict about what BEP 14 fixes and lenient about the rest, as for any HTTP request: the
/// request line must be `BT-SEARCH * HTTP/1.1`; header names are case-insensitive, unknown headers are
/// ignored, lines may end in CRLF or LF; `Port` must be one decimal port in 1...65535; every `Infohash`
/// 40 hex digits (several may follow one another, BEP 14), at least one and at most ``maxInfoHashes``.
/// The datagram may hold at most ``maxLength`` bytes. Errors are typed and say which line was wrong.
public struct LocalDiscoveryAnnouncement: Hashable, Sendable {
    /// The multicast groups (BEP 14 "Protocol"): A (org-local IPv4) and B (site-local IPv6).
    public static let ipv4Group = "239.192.152.143"
    public static let ipv6Group = "ff15::efc0:988f"
    public static let port: UInt16 = 6771
    /// The longest datagram read (BEP 14: announces "should not exceed 1400 bytes").
    public static let maxLength = 1400
    /// The most info-hashes in one announce (BEP 14 allows several; 25 fill 1400 bytes).
    public static let maxInfoHashes = 25

    /// The `Host` header: the group the announce was sent to (`239.192.152.143:6771` or `[ff15::efc0:988f]:6771`).
    public var host: String
    /// The TCP port the announcer listens on for BitTorrent.
    public var port: UInt16
    public var infoHashes: [Digest20]
    /// An opaque value that lets the announcer recognise its own announces coming back.
    public var cookie: String?

    public init(host: String, port: UInt16, infoHashes: [Digest20], cookie: String? = nil) {
        self.host = host
        self.port = port
        self.infoHashes = infoHashes
        self.cookie = cookie
    }

    /// The `Host` value for a group: `239.192.152.143:6771` or `[ff15::efc0:988f]:6771`.
    public static func hostHeader(ipv6: Bool) -> String {
        ipv6 ? "[\(ipv6Group)]:\(port)" : "\(ipv4Group):\(port)"
    }

    /// Why a datagram is not an announce.
    public struct Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        public enum Code: Hashable, Sendable {
            /// Longer than ``LocalDiscoveryAnnouncement/maxLength`` bytes.
            case tooLong(Int)
            /// Not valid UTF-8 text.
            case notText
            /// The first line is not `BT-SEARCH * HTTP/1.1`.
            case notBTSearch
            /// A header line without a colon.
            case malformedHeader
            /// No `Port` header.
            case missingPort
            /// A `Port` that is not a port number.
            case invalidPort(String)
            /// No `Infohash` header.
            case missingInfoHash
            /// An `Infohash` that is not 40 hex digits.
            case invalidInfoHash(String)
            /// More than ``LocalDiscoveryAnnouncement/maxInfoHashes`` info-hashes.
            case tooManyInfoHashes
        }

        public var code: Code
        /// The line at fault, from 1.
        public var line: Int?

        public init(_ code: Code, line: Int? = nil) {
            self.code = code
            self.line = line
        }

        public var description: String {
            let what: String
            switch code {
            case .tooLong(let length): what = "datagram of \(length) bytes (at most \(LocalDiscoveryAnnouncement.maxLength))"
            case .notText: what = "not UTF-8 text"
            case .notBTSearch: what = "not a BT-SEARCH request"
            case .malformedHeader: what = "a header line without a colon"
            case .missingPort: what = "no Port header"
            case .invalidPort(let value): what = "Port \(value.prefix(20)) is not a port number"
            case .missingInfoHash: what = "no Infohash header"
            case .invalidInfoHash(let value): what = "Infohash \(value.prefix(50)) is not 40 hex digits"
            case .tooManyInfoHashes: what = "more than \(LocalDiscoveryAnnouncement.maxInfoHashes) info-hashes"
            }
            return "LSD announce: " + what + (line.map { ", line \($0)" } ?? "")
        }
    }

    /// Reads a datagram.
    public init(parsing datagram: [UInt8]) throws(Error) {
        guard datagram.count <= Self.maxLength else { throw Error(.tooLong(datagram.count)) }
        guard String(validating: datagram, as: UTF8.self) != nil else { throw Error(.notText) }
        // Lines split on LF bytes, a CR before it dropped (as text, "\r\n" is one Character and no "\n").
        let lines = datagram.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { bytes in
            String(decoding: bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes, as: UTF8.self)[...]
        }
        guard let first = lines.first, first == "BT-SEARCH * HTTP/1.1" else { throw Error(.notBTSearch, line: 1) }
        var host = ""
        var port: UInt16?
        var hashes: [Digest20] = []
        var cookie: String?
        for (index, line) in lines.enumerated().dropFirst() {
            if line.isEmpty { break }  // the end of the headers
            guard let colon = line.firstIndex(of: ":") else { throw Error(.malformedHeader, line: index + 1) }
            let name = line[..<colon].trimmingCharacters(in: " \t").lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            switch name {
            case "host":
                host = value
            case "port":
                guard value.count <= 5, value.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt16(value),
                    number > 0
                else { throw Error(.invalidPort(value), line: index + 1) }
                port = number
            case "infohash":
                guard hashes.count < Self.maxInfoHashes else { throw Error(.tooManyInfoHashes, line: index + 1) }
                guard value.utf8.count == 40, let bytes = Hex.decode(value), let hash = Digest20(bytes: bytes) else {
                    throw Error(.invalidInfoHash(value), line: index + 1)
                }
                if !hashes.contains(hash) { hashes.append(hash) }
            case "cookie":
                cookie = value
            default:
                continue
            }
        }
        guard let port else { throw Error(.missingPort) }
        guard !hashes.isEmpty else { throw Error(.missingInfoHash) }
        self.init(host: host, port: port, infoHashes: hashes, cookie: cookie)
    }

    /// The datagram, as BEP 14 writes it (CRLF line ends, an empty line and another CRLF at the end).
    public var encoded: [UInt8] {
        var text = "BT-SEARCH * HTTP/1.1\r\nHost: \(host)\r\nPort: \(port)\r\n"
        for hash in infoHashes { text += "Infohash: \(Hex.encode(hash.bytes))\r\n" }
        if let cookie { text += "cookie: \(cookie)\r\n" }
        text += "\r\n\r\n"
        return Array(text.utf8)
    }
}

extension Substring {
    /// The text without `characters` at either end.
    fileprivate func trimmingCharacters(in characters: String) -> String {
        var slice = self[...]
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
