import ShoalCore

/// Twenty bytes held inline (no heap storage): an info-hash or a peer id as the tracker codecs and
/// the swarm registry handle them. ``Digest20`` and ``PeerID`` keep their bytes in an array, which would
/// cost an allocation per packet on the server's hot path; this is three words.
public struct Bytes20: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Bytes 0-7, 8-15 and 16-19, each read big-endian.
    public let high: UInt64
    public let middle: UInt64
    public let low: UInt32

    public init(high: UInt64, middle: UInt64, low: UInt32) {
        self.high = high
        self.middle = middle
        self.low = low
    }

    /// The twenty bytes at `offset` in `buffer` (which must hold them).
    @inline(__always)
    init(_ buffer: UnsafeRawBufferPointer, at offset: Int) {
        high = UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        middle = UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        low = UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self))
    }

    /// From exactly 20 bytes; nil for any other count.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == 20 else { return nil }
        var words: (UInt64, UInt64, UInt32) = (0, 0, 0)
        for (index, byte) in bytes.enumerated() {
            switch index {
            case 0..<8: words.0 = words.0 << 8 | UInt64(byte)
            case 8..<16: words.1 = words.1 << 8 | UInt64(byte)
            default: words.2 = words.2 << 8 | UInt32(byte)
            }
        }
        (high, middle, low) = words
    }

    public init(_ digest: Digest20) { self.init(bytes: digest.bytes)! }
    public init(_ peerID: PeerID) { self.init(bytes: peerID.bytes)! }

    /// The bytes, in order.
    public var bytes: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(20)
        append(to: &output)
        return output
    }

    /// Appends the twenty bytes to `output`.
    @inline(__always)
    public func append(to output: inout [UInt8]) {
        output.appendBigEndian(high)
        output.appendBigEndian(middle)
        output.appendBigEndian(low)
    }

    public var digest: Digest20 { Digest20(bytes: bytes)! }
    public var peerID: PeerID { PeerID(bytes: bytes)! }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: Bytes20, rhs: Bytes20) -> Bool {
        (lhs.high, lhs.middle, lhs.low) < (rhs.high, rhs.middle, rhs.low)
    }
}

extension [UInt8] {
    // Byte by byte: `append(contentsOf:)` of a raw buffer took its generic path, 3% of the UDP server's time.
    @inline(__always)
    mutating func appendBigEndian(_ value: UInt64) {
        appendBigEndian(UInt32(truncatingIfNeeded: value >> 32))
        appendBigEndian(UInt32(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }

    /// Appends a decimal integer (bencode's `i...e` bodies and string lengths).
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            appendDecimal(magnitude: value.magnitude)
        } else {
            appendDecimal(magnitude: UInt64(value))
        }
    }

    mutating func appendDecimal(magnitude value: UInt64) {
        guard value >= 10 else {
            append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        appendDecimal(magnitude: value / 10)
        append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
