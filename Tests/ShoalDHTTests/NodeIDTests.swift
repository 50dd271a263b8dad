import ShoalCore
import Testing

@testable import ShoalDHT

@Suite("Node ids")
struct NodeIDTests {
    @Test func bytesRoundTrip() throws {
        var random = SplitMix64(seed: 1)
        for _ in 0..<100 {
            let id = NodeID.random(using: &random)
            #expect(NodeID(bytes: id.bytes) == id)
            #expect(NodeID(hex: id.hex) == id)
        }
        #expect(NodeID(bytes: [UInt8](repeating: 0, count: 19)) == nil)
        #expect(NodeID(bytes: [UInt8](repeating: 0, count: 21)) == nil)
    }

    @Test func orderIsBigEndianByteOrder() {
        var random = SplitMix64(seed: 2)
        for _ in 0..<500 {
            let a = NodeID.random(using: &random)
            // Ids that differ in one of the last bytes only, to exercise every word.
            var bytes = a.bytes
            bytes[Int(random.next() % 20)] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            let b = NodeID(bytes: bytes)!
            #expect((a < b) == a.bytes.lexicographicallyPrecedes(b.bytes))
        }
    }

    @Test func xorDistanceAndPrefixes() {
        let a = NodeID(hex: "0000000000000000000000000000000000000000")!
        let b = NodeID(hex: "0000000000000000000000000000000000000001")!
        let c = NodeID(hex: "8000000000000000000000000000000000000000")!
        #expect(a.distance(to: b) == b)
        #expect(a.commonPrefixLength(with: a) == 160)
        #expect(a.commonPrefixLength(with: b) == 159)
        #expect(a.commonPrefixLength(with: c) == 0)
        #expect(a.isCloser(b, than: c))
        let mid = NodeID(hex: "0000000000000000800000000000000000000000")!
        #expect(a.commonPrefixLength(with: mid) == 64)
        #expect(mid.bit(64))
        #expect(!mid.bit(63))
        #expect(NodeID.zero.settingBit(64) == mid)
        #expect(NodeID.prefixMask(0) == .zero)
        #expect(NodeID.prefixMask(160) == .max)
        #expect(NodeID.prefixMask(65).leadingZeroBitCount == 0)
        #expect((~NodeID.prefixMask(65)).leadingZeroBitCount == 65)
    }

    @Test func randomSharingPrefixKeepsThePrefix() {
        var random = SplitMix64(seed: 3)
        let own = NodeID.random(using: &random)
        for length in [0, 1, 7, 63, 64, 65, 127, 128, 129, 159, 160] {
            let other = own.randomSharingPrefix(length, using: &random)
            #expect(own.commonPrefixLength(with: other) >= length)
        }
    }

    /// BEP 42's test vectors: the first 21 bits and the last byte are fixed by the address and `r`.
    @Test(arguments: [
        ("124.31.75.21", 1, "5fbfbf"), ("21.75.31.124", 86, "5a3ce9"), ("65.23.51.170", 22, "a5d432"),
        ("84.124.73.14", 65, "1b0321"), ("43.213.53.83", 90, "e56f6c"),
    ])
    func bep42Vectors(address: String, rand: Int, prefix: String) throws {
        let host = try #require(NodeAddress("\(address):1")).host
        let crc = NodeID.securePrefix(for: host, r: UInt8(rand & 7))
        let expected = try #require(UInt32(prefix, radix: 16))
        #expect(crc >> 11 == expected >> 3)
        // An id built with that r verifies for the address, and not for another.
        struct Fixed: RandomNumberGenerator {
            var values: [UInt64]
            mutating func next() -> UInt64 { values.isEmpty ? 0x1234_5678_9ABC_DEF0 : values.removeFirst() }
        }
        var random = Fixed(values: [UInt64(rand)])
        let id = NodeID.secure(for: host, using: &random)
        #expect(id.bytes[19] == UInt8(rand))
        #expect(id.hex.hasPrefix(String(prefix.prefix(4))))
        #expect(id.isSecure(for: host))
        let other = try #require(NodeAddress("9.9.9.9:1")).host
        #expect(!id.isSecure(for: other))
    }

    @Test func crc32cKnownValue() {
        // RFC 3720 B.4: 32 bytes of zeros.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func secureIDsForIPv6() throws {
        var random = SplitMix64(seed: 4)
        let host = try #require(NodeAddress("[2001:db8::1]:1")).host
        for _ in 0..<20 {
            let id = NodeID.secure(for: host, using: &random)
            #expect(id.isSecure(for: host))
        }
        // A random id conforms with probability 2^-21.
        #expect((0..<100).filter { _ in NodeID.random(using: &random).isSecure(for: host) }.isEmpty)
    }
}
