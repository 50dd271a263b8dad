/// The query string of an HTTP tracker request, as raw bytes: BEP 3's `info_hash` and `peer_id` are
/// binary, percent-encoded byte by byte, so the query cannot be read as UTF-8 text first (as general
/// web frameworks do).
public enum URLQuery {
    /// The most parameters read from one query; the rest are ignored.
    public static let maxParameters = 128

    /// Percent-encodes every byte except RFC 3986's unreserved characters.
    public static func percentEncode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.underestimatedCount * 3)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                output.append(byte)
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Calls `body` with each `name=value` of `query` (the part after `?`, up to any `#`), both
    /// percent-decoded (`+` is a space), in order, at most ``maxParameters``. A `%` not followed by two
    /// hexadecimal digits is kept as it is. Returns false if `body` did.
    @discardableResult
    public static func forEachParameter(
        in query: UnsafeRawBufferPointer, _ body: (_ name: ArraySlice<UInt8>, _ value: ArraySlice<UInt8>) -> Bool
    ) -> Bool {
        var count = 0
        var start = 0
        var name: [UInt8] = []
        var value: [UInt8] = []
        name.reserveCapacity(32)
        value.reserveCapacity(64)
        while start < query.count, count < maxParameters {
            var end = start
            while end < query.count, query[end] != UInt8(ascii: "&"), query[end] != UInt8(ascii: "#") { end += 1 }
            if end > start {
                var equals = start
                while equals < end, query[equals] != UInt8(ascii: "=") { equals += 1 }
                name.removeAll(keepingCapacity: true)
                value.removeAll(keepingCapacity: true)
                decode(query, start..<equals, into: &name)
                if equals < end { decode(query, (equals + 1)..<end, into: &value) }
                count += 1
                if !body(name[...], value[...]) { return false }
            }
            if end < query.count, query[end] == UInt8(ascii: "#") { break }
            start = end + 1
        }
        return true
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, into output: inout [UInt8]) {
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < range.upperBound, let high = hexValue(bytes[index + 1]),
                let low = hexValue(bytes[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
            } else if byte == UInt8(ascii: "+") {
                output.append(UInt8(ascii: " "))
                index += 1
            } else {
                output.append(byte)
                index += 1
            }
        }
    }

    @inline(__always)
    static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
