/// Which pieces a peer has: one bit per piece, the first byte holding pieces 0-7 from the high bit
/// down (BEP 3 `bitfield`). Spare bits past the last piece are always zero.
public struct Bitfield: Hashable, Sendable, CustomStringConvertible {
    /// The number of pieces.
    public let count: Int
    /// The wire form: `(count + 7) / 8` bytes.
    public private(set) var bytes: [UInt8]
    /// The number of bits set, kept up to date.
    public private(set) var setCount: Int

    /// All clear (`have none`), or all set (`have all`, a seed).
    public init(count: Int, allSet: Bool = false) {
        precondition(count >= 0, "a bitfield cannot have a negative count")
        self.count = count
        self.bytes = [UInt8](repeating: allSet ? 0xFF : 0, count: (count + 7) / 8)
        self.setCount = allSet ? count : 0
        if allSet { clearSpareBits() }
    }

    /// A bitfield from its wire form; nil when the length is wrong or a spare bit is set
    /// (BEP 3: spare bits are zero; a peer that sets them is broken or hostile).
    public init?<Bytes: Collection<UInt8>>(count: Int, bytes: Bytes) {
        guard count >= 0, bytes.count == (count + 7) / 8 else { return nil }
        self.count = count
        self.bytes = Array(bytes)
        let spare = self.bytes.count * 8 - count
        if spare > 0, let last = self.bytes.last, last & UInt8(truncatingIfNeeded: (1 << spare) - 1) != 0 {
            return nil
        }
        self.setCount = self.bytes.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Whether piece `index` is set; false for an index out of range.
    public subscript(index: Int) -> Bool {
        guard index >= 0, index < count else { return false }
        return bytes[index >> 3] & (0x80 >> UInt8(index & 7)) != 0
    }

    /// Sets piece `index`; returns whether it was newly set. Ignores an index out of range.
    @discardableResult
    public mutating func set(_ index: Int) -> Bool {
        guard index >= 0, index < count, !self[index] else { return false }
        bytes[index >> 3] |= 0x80 >> UInt8(index & 7)
        setCount += 1
        return true
    }

    /// Clears piece `index`; returns whether it was set.
    @discardableResult
    public mutating func clear(_ index: Int) -> Bool {
        guard index >= 0, index < count, self[index] else { return false }
        bytes[index >> 3] &= ~(0x80 >> UInt8(index & 7))
        setCount -= 1
        return true
    }

    /// Whether every piece is set.
    public var isComplete: Bool { setCount == count }
    /// Whether no piece is set.
    public var isEmpty: Bool { setCount == 0 }

    /// The indices that are set, in order.
    public var setIndices: [Int] {
        var result: [Int] = []
        result.reserveCapacity(setCount)
        for (byteIndex, byte) in bytes.enumerated() where byte != 0 {
            for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                result.append(byteIndex * 8 + bit)
            }
        }
        return result
    }

    /// `1` for each set piece and `0` otherwise, piece 0 first.
    public var description: String {
        String((0..<count).map { self[$0] ? "1" : "0" })
    }

    private mutating func clearSpareBits() {
        let spare = bytes.count * 8 - count
        if spare > 0 { bytes[bytes.count - 1] &= ~UInt8(truncatingIfNeeded: (1 << spare) - 1) }
    }
}
