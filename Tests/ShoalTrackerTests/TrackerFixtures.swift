import ShoalCore

@testable import ShoalTracker

enum TrackerFixtures {
    static let infoHash = Bytes20(bytes: (0..<20).map { UInt8($0 * 13 &+ 7) })!
    static let otherHash = Bytes20(bytes: (0..<20).map { UInt8(255 - $0) })!
    static let peerID = Bytes20(bytes: Array("-SH0100-abcdefghijkl".utf8))!

    static func hash(_ seed: Int) -> Bytes20 {
        var random = SplitMix64(seed: UInt64(seed))
        return Bytes20(high: random.next(), middle: random.next(), low: UInt32(truncatingIfNeeded: random.next()))
    }

    static func v4(_ text: String) -> TrackerHost {
        TrackerHost(PeerAddress(text + ":1")!.host)
    }

    static func v6(_ text: String) -> TrackerHost {
        TrackerHost(PeerAddress("[" + text + "]:1")!.host)
    }

    /// Peers from compact bytes of one family.
    static func peers(_ bytes: [UInt8], ipv6: Bool) -> [PeerAddress] {
        let stride = ipv6 ? 18 : 6
        return Swift.stride(from: 0, to: bytes.count - stride + 1, by: stride).compactMap {
            PeerAddress(compact: bytes[$0..<($0 + stride)])
        }
    }

    /// The code of the error `body` throws; nil when it throws none.
    static func code<Result>(_ body: () throws -> Result) -> TrackerError.Code? {
        do {
            _ = try body()
            return nil
        } catch {
            return (error as? TrackerError)?.code
        }
    }

    /// Every proper prefix of `bytes` (the truncations a decoder must refuse or accept without trapping).
    static func prefixes(_ bytes: [UInt8]) -> [[UInt8]] {
        (0..<bytes.count).map { Array(bytes.prefix($0)) }
    }
}
