/// An announce URL: `http://`, `https://` (BEP 3) or `udp://` (BEP 15), as found in a torrent's
/// `announce` and `announce-list` (BEP 12) or given with `--tracker`.
///
/// URLs come from untrusted files, so the parser is strict about the parts Shoal uses (scheme, host,
/// port) and keeps the path and query as they are (private trackers put a passkey there). User info
/// (`user@host`) is refused; a fragment is dropped.
public struct TrackerURL: Hashable, Sendable, CustomStringConvertible {
    public enum Scheme: String, Hashable, Sendable {
        case http, https, udp
    }

    public let scheme: Scheme
    /// The host name or address, IPv6 without its brackets.
    public let host: String
    public let port: Int
    /// The path and query, from the first `/` (`/announce?passkey=...`); `/` when there is none.
    public let pathAndQuery: String

    /// The longest URL accepted.
    public static let maxLength = 4096

    public init(parsing text: String) throws(TrackerError) {
        guard text.utf8.count <= Self.maxLength else { throw TrackerError(.invalidURL("longer than \(Self.maxLength) bytes")) }
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw TrackerError(.invalidURL("no scheme in \"\(text)\""))
        }
        let schemeText = text[..<colon].lowercased()
        guard let scheme = Scheme(rawValue: schemeText) else {
            throw TrackerError(.invalidURL("unsupported scheme \"\(schemeText)\" (http, https and udp are)"))
        }
        for (offset, byte) in text.utf8.enumerated() where byte <= 0x20 || byte == 0x7F {
            throw TrackerError(.invalidURL("a space or control character in \"\(text)\""), at: offset)
        }
        var rest = text[text.index(colon, offsetBy: 3)...]
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if path.isEmpty || path.first == "?" { path = "/" + path }
        guard !authority.contains("@") else { throw TrackerError(.invalidURL("user information in \"\(text)\" is not supported")) }

        let hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw TrackerError(.invalidURL("unclosed [ in \"\(text)\"")) }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw TrackerError(.invalidURL("text after ] in \"\(text)\"")) }
                portText = after.dropFirst()
            }
            guard hostText.contains(":"), hostText.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw TrackerError(.invalidURL("\"\(hostText)\" is not an IPv6 address"))
            }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                hostText = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                hostText = authority
            }
            guard hostText.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") })
            else { throw TrackerError(.invalidURL("\"\(hostText)\" is not a host name")) }
        }
        guard !hostText.isEmpty else { throw TrackerError(.invalidURL("no host in \"\(text)\"")) }
        let port: Int
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(portText), (1...65535).contains(value)
            else { throw TrackerError(.invalidURL("port \"\(portText)\" is not 1 to 65535")) }
            port = value
        } else {
            switch scheme {
            case .http: port = 80
            case .https: port = 443
            case .udp: throw TrackerError(.invalidURL("a udp:// tracker needs a port"))
            }
        }
        self.scheme = scheme
        self.host = hostText.lowercased()
        self.port = port
        self.pathAndQuery = path
    }

    /// The host as it goes in a URL (IPv6 in brackets).
    public var hostInURL: String { host.contains(":") ? "[\(host)]" : host }

    /// The URL, normalised (lowercase scheme and host, no fragment, the default port left out).
    public var description: String {
        let defaultPort = (scheme == .http && port == 80) || (scheme == .https && port == 443)
        return "\(scheme.rawValue)://\(hostInURL)\(defaultPort ? "" : ":\(port)")\(pathAndQuery)"
    }

    /// The scrape URL of BEP 48: for HTTP, the last path component must begin with `announce`, which
    /// becomes `scrape`; nil when it does not (the tracker does not support scrape). UDP trackers
    /// scrape on the same address (BEP 15).
    public var scrapeURL: TrackerURL? {
        guard scheme != .udp else { return self }
        let queryStart = pathAndQuery.firstIndex(of: "?") ?? pathAndQuery.endIndex
        let path = pathAndQuery[..<queryStart]
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let last = path[path.index(after: slash)...]
        guard last.hasPrefix("announce") else { return nil }
        let scrapePath = path[...slash] + "scrape" + last.dropFirst("announce".count) + pathAndQuery[queryStart...]
        return TrackerURL(scheme: scheme, host: host, port: port, pathAndQuery: String(scrapePath))
    }

    /// This URL with more query parameters (already encoded), after any the URL has.
    public func appendingQuery(_ query: String) -> String {
        let base = description
        guard !query.isEmpty else { return base }
        if base.hasSuffix("?") || base.hasSuffix("&") { return base + query }
        return base + (pathAndQuery.contains("?") ? "&" : "?") + query
    }

    private init(scheme: Scheme, host: String, port: Int, pathAndQuery: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.pathAndQuery = pathAndQuery
    }
}
