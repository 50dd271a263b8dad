import ShoalCore

/// A 160-bit identifier in the DHT's key space: a node's id, an info-hash as a lookup target, or the XOR
/// distance between two of them (BEP 5, "Overview": `distance(A, B) = |A xor B|`, read as an unsigned integer).
///
/// Held in three integers (20 bytes inline, no heap storage), because a routing table and every simulated node
/// carries hundreds of them. Ordering is the unsigned big-endian order of the 20 bytes, so comparing two
/// distances tells which is closer.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bytes 0-7, big-endian.
    public var high: UInt64
    /// Bytes 8-15, big-endian.
    public var middle: UInt64
    /// Bytes 16-19, big-endian.
    public var low: UInt32

    public static let byteCount = 20
    public static let bitCount = 160

    public init(high: UInt64, middle: UInt64, low: UInt32) {
        self.high = high
        self.middle = middle
        self.low = low
    }

    /// An id from exactly 20 bytes; nil for any other count.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == Self.byteCount else { return nil }
        var high: UInt64 = 0
        var middle: UInt64 = 0
        var low: UInt32 = 0
        for (index, byte) in bytes.enumerated() {
            switch index {
            case 0..<8: high = high << 8 | UInt64(byte)
            case 8..<16: middle = middle << 8 | UInt64(byte)
            default: low = low << 8 | UInt32(byte)
            }
        }
        self.init(high: high, middle: middle, low: low)
    }

    /// The id of a v1 info-hash (the DHT's key for a torrent).
    public init(_ digest: Digest20) {
        self.init(bytes: digest.bytes)!
    }

    /// An id from 40 hexadecimal digits.
    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    public static let zero = NodeID(high: 0, middle: 0, low: 0)

    /// This id with bit `index` (0: most significant) set.
    public func settingBit(_ index: Int) -> NodeID {
        var copy = self
        switch index {
        case 0..<64: copy.high |= 1 << UInt64(63 - index)
        case 64..<128: copy.middle |= 1 << UInt64(127 - index)
        default: copy.low |= 1 << UInt32(159 - index)
        }
        return copy
    }
    public static let max = NodeID(high: .max, middle: .max, low: .max)

    /// A uniformly random id.
    public static func random(using random: inout some RandomNumberGenerator) -> NodeID {
        NodeID(high: random.next(), middle: random.next(), low: UInt32(truncatingIfNeeded: random.next()))
    }

    /// A random id that shares its first `prefixLength` bits with `self` (the rest random): a target inside
    /// a routing table bucket, for refreshing it (BEP 5, "Routing Table").
    public func randomSharingPrefix(_ prefixLength: Int, using random: inout some RandomNumberGenerator) -> NodeID {
        let other = NodeID.random(using: &random)
        let mask = NodeID.prefixMask(prefixLength)
        return (self & mask) | (other & ~mask)
    }

    /// This id with the `count` bits from bit `start` (0: most significant) replaced by the low bits of `value`.
    func replacingBits(from start: Int, count: Int, with value: Int) -> NodeID {
        var result = self
        for offset in 0..<count where start + offset < NodeID.bitCount {
            let bit = start + offset
            let one = (value >> (count - 1 - offset)) & 1 == 1
            if one != result.bit(bit) { result = result ^ NodeID.zero.settingBit(bit) }
        }
        return result
    }

    /// The 20 bytes, big-endian.
    public var bytes: [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(Self.byteCount)
        append(to: &result)
        return result
    }

    /// Appends the 20 bytes to `output`.
    public func append(to output: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: middle >> UInt64(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: low >> UInt32(shift))) }
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    /// The XOR distance to `other` (BEP 5).
    @inlinable
    public func distance(to other: NodeID) -> NodeID { self ^ other }

    /// Whether `a` is closer to `self` than `b` is.
    @inlinable
    public func isCloser(_ a: NodeID, than b: NodeID) -> Bool { (a ^ self) < (b ^ self) }

    /// The number of leading bits `self` and `other` share (160 when equal): the index of the routing table
    /// bucket `other` falls in, as seen from `self`.
    @inlinable
    public func commonPrefixLength(with other: NodeID) -> Int { (self ^ other).leadingZeroBitCount }

    /// Leading zero bits, 0-160.
    @inlinable
    public var leadingZeroBitCount: Int {
        if high != 0 { return high.leadingZeroBitCount }
        if middle != 0 { return 64 + middle.leadingZeroBitCount }
        return 128 + low.leadingZeroBitCount
    }

    /// The bit at `index` (0 is the most significant).
    public func bit(_ index: Int) -> Bool {
        switch index {
        case 0..<64: return high >> UInt64(63 - index) & 1 == 1
        case 64..<128: return middle >> UInt64(127 - index) & 1 == 1
        default: return low >> UInt32(159 - index) & 1 == 1
        }
    }

    /// Ones in the first `length` bits (0-160), zeros after.
    public static func prefixMask(_ length: Int) -> NodeID {
        let length = Swift.max(0, Swift.min(length, bitCount))
        func mask64(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        func mask32(_ bits: Int) -> UInt32 { bits <= 0 ? 0 : bits >= 32 ? .max : ~(UInt32.max >> UInt32(bits)) }
        return NodeID(high: mask64(length), middle: mask64(length - 64), low: mask32(length - 128))
    }

    @inlinable
    public static func ^ (lhs: NodeID, rhs: NodeID) -> NodeID {
        NodeID(high: lhs.high ^ rhs.high, middle: lhs.middle ^ rhs.middle, low: lhs.low ^ rhs.low)
    }

    public static func & (lhs: NodeID, rhs: NodeID) -> NodeID {
        NodeID(high: lhs.high & rhs.high, middle: lhs.middle & rhs.middle, low: lhs.low & rhs.low)
    }

    public static func | (lhs: NodeID, rhs: NodeID) -> NodeID {
        NodeID(high: lhs.high | rhs.high, middle: lhs.middle | rhs.middle, low: lhs.low | rhs.low)
    }

    public static prefix func ~ (id: NodeID) -> NodeID {
        NodeID(high: ~id.high, middle: ~id.middle, low: ~id.low)
    }

    @inlinable
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        if lhs.high != rhs.high { return lhs.high < rhs.high }
        if lhs.middle != rhs.middle { return lhs.middle < rhs.middle }
        return lhs.low < rhs.low
    }
}
