import Testing

@testable import ShoalTracker

@Suite("SipHash-2-4")
struct SipHasherTests {
    /// Key 00 01 .. 0f, as in the reference implementation's test vectors.
    let key0: UInt64 = 0x0706_0504_0302_0100
    let key1: UInt64 = 0x0f0e_0d0c_0b0a_0908

    private func hash(length: Int) -> UInt64 {
        var hasher = SipHasher(key0: key0, key1: key1)
        hasher.combine(bytes: (0..<length).map { UInt8($0) })
        return hasher.finalize()
    }

    @Test func matchesTheReferenceVectors() {
        #expect(hash(length: 0) == 0x726f_db47_dd0e_0e31)
        #expect(hash(length: 1) == 0x74f8_39c5_93dc_67fd)
        #expect(hash(length: 2) == 0x0d6c_8009_d9a9_4f5a)
        #expect(hash(length: 3) == 0x8567_6696_d7fb_7e2d)
        // The example of the SipHash paper (appendix A): 15 bytes 00 .. 0e.
        #expect(hash(length: 15) == 0xa129_ca61_49be_45e5)
    }

    @Test func wordsAndBytesAgree() {
        let words: [UInt64] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908, 0x1716_1514_1312_1110]
        let viaBytes = hash(length: 24)
        var hasher = SipHasher(key0: key0, key1: key1)
        for word in words { hasher.combine(word) }
        #expect(hasher.finalize() == viaBytes)
        #expect(SipHasher.hash(key0: key0, key1: key1, words[0], words[1], words[2]) == viaBytes)
        // A word after an odd byte goes through the byte path and still agrees.
        var mixed = SipHasher(key0: key0, key1: key1)
        mixed.combine(byte: 0)
        mixed.combine(0x0807_0605_0403_0201)
        #expect(mixed.finalize() == hash(length: 9))
    }

    @Test func theKeyMatters() {
        #expect(SipHasher.hash(key0: 1, key1: 2, 3, 4, 5) != SipHasher.hash(key0: 1, key1: 3, 3, 4, 5))
    }
}
