import ShoalCore
import Testing

@Suite struct ByteCountTests {
    @Test(arguments: [
        ("0", Int64(0)), ("1048576", 1_048_576), ("512k", 524_288), ("512K", 524_288), ("8M", 8_388_608),
        ("8MiB", 8_388_608), ("8mb", 8_388_608), ("2M/s", 2_097_152), ("1.5GiB", 1_610_612_736),
        ("1T", 1_099_511_627_776), ("100B", 100), ("0.5k", 512),
    ])
    func parsesSizesAndRates(text: String, bytes: Int64) {
        #expect(ByteCount(parsing: text)?.bytes == bytes)
    }

    @Test(arguments: ["", "k", "B", "-1", "1e3", "1.2.3", "8 M", "lots", "8X", "nan", "inf", "9999999999T", "٣k"])
    func refusesAnythingElse(text: String) {
        #expect(ByteCount(parsing: text) == nil)
    }

    @Test(arguments: [0, 100, 1024, 1536 * 1024, 32 << 20, 3 << 40, 5 << 50, 1_000_000_007] as [Int64])
    func describesWhatItParsesBack(bytes: Int64) {
        let count = ByteCount(bytes: bytes)
        #expect(ByteCount(parsing: count.description) == count, "\(count)")
    }
}
