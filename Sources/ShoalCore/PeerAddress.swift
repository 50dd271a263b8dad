/// Where a peer listens: an IPv4 or IPv6 address and a TCP port.
///
/// Peers reach us from untrusted sources (trackers, the DHT, PEX, the command line), so the
/// parsers here are strict: dotted-quad IPv4 only, RFC 4291 text for IPv6 (with `::` and an optional
/// trailing dotted quad), ports 1-65535.
public struct PeerAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Host: Hashable, Sendable {
        /// Four bytes, network order.
        case ipv4(UInt32)
        /// Sixteen bytes, network order.
        case ipv6([UInt8])
    }

    public let host: Host
    public let port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `1.2.3.4:6881` or `[::1]:6881`; nil for anything else (host names are not resolved
    /// here; port 0 is refused).
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        let hostText: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostText = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
            guard let bytes = Self.parseIPv6(hostText) else { return nil }
            self.host = .ipv6(bytes)
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostText = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard let value = Self.parseIPv4(hostText) else { return nil }
            self.host = .ipv4(value)
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = UInt16(portText), port > 0
        else { return nil }
        self.port = port
    }

    /// BEP 23 compact form: 4 address bytes and 2 port bytes (IPv4), or 16 and 2 (IPv6, BEP 7).
    public init?<Bytes: Collection<UInt8>>(compact bytes: Bytes) {
        let array = Array(bytes)
        switch array.count {
        case 6:
            host = .ipv4(array[0..<4].reduce(0) { $0 << 8 | UInt32($1) })
            port = UInt16(array[4]) << 8 | UInt16(array[5])
        case 18:
            host = .ipv6(Array(array[0..<16]))
            port = UInt16(array[16]) << 8 | UInt16(array[17])
        default:
            return nil
        }
    }

    /// The compact form (6 or 18 bytes).
    public var compact: [UInt8] {
        var bytes = hostBytes
        bytes.append(UInt8(port >> 8))
        bytes.append(UInt8(port & 0xFF))
        return bytes
    }

    /// The address bytes in network order (4 or 16).
    public var hostBytes: [UInt8] {
        switch host {
        case .ipv4(let value): [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        case .ipv6(let bytes): bytes
        }
    }

    public var isIPv6: Bool {
        if case .ipv6 = host { return true }
        return false
    }

    /// The host as text: `1.2.3.4` or `::1` (RFC 5952: lowercase, longest zero run as `::`).
    public var hostText: String {
        switch host {
        case .ipv4:
            return hostBytes.map(String.init).joined(separator: ".")
        case .ipv6(let bytes):
            let groups = (0..<8).map { UInt16(bytes[$0 * 2]) << 8 | UInt16(bytes[$0 * 2 + 1]) }
            var bestStart = -1
            var bestLength = 1
            var index = 0
            while index < 8 {
                guard groups[index] == 0 else {
                    index += 1
                    continue
                }
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            }
            func text(_ range: Range<Int>) -> String {
                range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return text(0..<8) }
            return text(0..<bestStart) + "::" + text((bestStart + bestLength)..<8)
        }
    }

    /// `1.2.3.4:6881` or `[::1]:6881`, which the parser reads back.
    public var description: String {
        isIPv6 ? "[\(hostText)]:\(port)" : "\(hostText):\(port)"
    }

    public static func < (lhs: PeerAddress, rhs: PeerAddress) -> Bool {
        if lhs.isIPv6 != rhs.isIPv6 { return !lhs.isIPv6 }
        if lhs.hostBytes != rhs.hostBytes { return lhs.hostBytes.lexicographicallyPrecedes(rhs.hostBytes) }
        return lhs.port < rhs.port
    }

    /// Dotted quad with four decimal parts of 0-255, no leading zeros (which some parsers read as octal).
    static func parseIPv4(_ text: some StringProtocol) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                !(part.count > 1 && part.first == "0"), let byte = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    /// RFC 4291 section 2.2 text: eight groups of up to four hex digits, one `::`, an optional
    /// trailing IPv4 dotted quad. Zone ids (`%eth0`) are refused.
    static func parseIPv6(_ text: some StringProtocol) -> [UInt8]? {
        let text = String(text)
        guard !text.isEmpty, text.count <= 45 else { return nil }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4 && index == pieces.count - 1 && piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard !piece.isEmpty, piece.count <= 4, piece.allSatisfy(\.isHexDigit),
                        let group = UInt16(piece, radix: 16)
                    else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowIPv4: false), let tail = groups(halves[1], allowIPv4: true),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], allowIPv4: true), only.count == 8 else { return nil }
            all = only
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
