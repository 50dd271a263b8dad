import ShoalCore

/// Limits BEP 15 connect requests per source address: a token bucket per address, in a fixed table
/// whose bucket is chosen by a keyed hash of the address. Memory is fixed whatever the number of
/// addresses (addresses that share a bucket share its budget; with the key secret, no one can choose to
/// share another's). A connect costs the tracker little, but answering floods of them from spoofed
/// addresses would make it a reflector.
public struct ConnectRateLimiter: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// Connects allowed at once from one address.
        public var burst: Int
        /// Connects per second one address earns back.
        public var perSecond: Int
        /// Buckets in the table (a power of two).
        public var buckets: Int

        public init(burst: Int = 64, perSecond: Int = 16, buckets: Int = 1 << 14) {
            self.burst = max(burst, 1)
            self.perSecond = max(perSecond, 0)
            var size = 1
            while size < max(buckets, 1) { size *= 2 }
            self.buckets = size
        }
    }

    public let configuration: Configuration
    /// Tokens in thousandths.
    private var tokens: ContiguousArray<UInt32>
    /// Milliseconds since `origin` of each bucket's last refill.
    private var stamps: ContiguousArray<UInt32>
    private let origin: Instant
    private let key: (UInt64, UInt64)

    public init(configuration: Configuration = Configuration(), key: (UInt64, UInt64), now: Instant) {
        self.configuration = configuration
        tokens = ContiguousArray(repeating: UInt32(clamping: configuration.burst * 1000), count: configuration.buckets)
        stamps = ContiguousArray(repeating: 0, count: configuration.buckets)
        origin = now
        self.key = key
    }

    /// Whether `host` may connect now; spends a token when it may.
    public mutating func allow(_ host: TrackerHost, now: Instant) -> Bool {
        let (a, b, c) = host.hashWords
        let bucket = Int(truncatingIfNeeded: SipHasher.hash(key0: key.0, key1: key.1, a, b, c)) & (configuration.buckets - 1)
        let milliseconds = UInt32(clamping: max((now - origin).nanoseconds / 1_000_000, 0))
        let elapsed = UInt64(milliseconds &- stamps[bucket])
        let capacity = UInt64(configuration.burst) * 1000
        let refilled = min(capacity, UInt64(tokens[bucket]) + elapsed * UInt64(configuration.perSecond))
        stamps[bucket] = milliseconds
        guard refilled >= 1000 else {
            tokens[bucket] = UInt32(refilled)
            return false
        }
        tokens[bucket] = UInt32(refilled - 1000)
        return true
    }
}
