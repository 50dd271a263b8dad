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
    /// hexadecimal digits is kept as it is. The buffers are valid only during the call. Returns false if
    /// `body` did.
    @discardableResult
    public static func forEachParameter(
        in query: UnsafeRawBufferPointer,
        _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Bool
    ) -> Bool {
        // Decoded text is never longer than the query: one scratch buffer holds any name and value.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(query.count, 1)) { scratch in
            var count = 0
            var start = 0
            while start < query.count, count < maxParameters {
                var end = start
                while end < query.count, query[end] != UInt8(ascii: "&"), query[end] != UInt8(ascii: "#") { end += 1 }
                if end > start {
                    var equals = start
                    while equals < end, query[equals] != UInt8(ascii: "=") { equals += 1 }
                    let nameCount = decode(query, start..<equals, into: scratch, at: 0)
                    let valueCount = equals < end ? decode(query, (equals + 1)..<end, into: scratch, at: nameCount) : 0
                    count += 1
                    let name = UnsafeBufferPointer(rebasing: scratch[0..<nameCount])
                    let value = UnsafeBufferPointer(rebasing: scratch[nameCount..<(nameCount + valueCount)])
                    if !body(name, value) { return false }
                }
                if end < query.count, query[end] == UInt8(ascii: "#") { break }
                start = end + 1
            }
            return true
        }
    }

    /// Decodes `range` of `bytes` into `output` from `offset`; returns the bytes written (at most
    /// `range.count`).
    private static func decode(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, into output: UnsafeMutableBufferPointer<UInt8>, at offset: Int
    ) -> Int {
        var index = range.lowerBound
        var written = offset
        while index < range.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < range.upperBound, let high = hexValue(bytes[index + 1]),
                let low = hexValue(bytes[index + 2])
            {
                output[written] = high << 4 | low
                index += 3
            } else {
                output[written] = byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte
                index += 1
            }
            written += 1
        }
        return written - offset
    }

    /// Whether `bytes` are exactly the UTF-8 of `text` (query names, values and paths against constants):
    /// an indexed loop, where `elementsEqual` went through generic iterators on every request.
    @inlinable @inline(__always)
    public static func bytes(_ bytes: UnsafeRawBufferPointer, equal text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let other = text.utf8Start
        for index in 0..<bytes.count where bytes[index] != other[index] { return false }
        return true
    }

    @inlinable @inline(__always)
    public static func bytes(_ bytes: UnsafeBufferPointer<UInt8>, equal text: StaticString) -> Bool {
        Self.bytes(UnsafeRawBufferPointer(bytes), equal: text)
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
