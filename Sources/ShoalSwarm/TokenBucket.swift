import ShoalCore

/// A rate limiter: tokens (bytes) accrue at `rate` per second up to `burst`, and sending or receiving spends
/// them. Time is passed in. One bucket per torrent and one per session, each direction: spend from both
/// (`consume` on one, then the other, and `refund` the first what the second did not grant).
public struct TokenBucket: Hashable, Sendable {
    /// What `consume` allows.
    public enum Grant: Hashable, Sendable {
        /// Go ahead with this many bytes (at least 1, at most the amount asked).
        case granted(Int)
        /// Nothing now; at this instant the amount asked (up to `burst`) will be available.
        case wait(until: Instant)
    }

    /// Bytes per second; nil means unlimited.
    public private(set) var rate: Int64?
    /// The most tokens that can accrue.
    public private(set) var burst: Int64
    private var tokens: Double
    private var updated: Instant

    /// A full bucket.
    /// - Parameters:
    ///   - rate: bytes per second; nil, zero or negative means unlimited (libtorrent's convention for 0).
    ///   - burst: the largest amount at once; one second of `rate` when nil. At least 1.
    public init(rate: Int64?, burst: Int64? = nil, now: Instant) {
        self.rate = rate.flatMap { $0 > 0 ? $0 : nil }
        self.burst = max(1, burst ?? self.rate ?? 1)
        self.tokens = Double(self.burst)
        self.updated = now
    }

    /// A bucket that always grants everything.
    public static func unlimited(now: Instant) -> TokenBucket { TokenBucket(rate: nil, now: now) }

    public var isUnlimited: Bool { rate == nil }

    /// The whole bytes available at `now`.
    public func available(now: Instant) -> Int {
        guard rate != nil else { return .max }
        return Int(refilled(now: now))
    }

    /// Spends up to `bytes` tokens: grants what is available now, or says when the amount asked (capped at
    /// `burst`) will be. Asking for 0 or fewer bytes grants 0.
    public mutating func consume(upTo bytes: Int, now: Instant) -> Grant {
        guard bytes > 0 else { return .granted(0) }
        guard let rate else { return .granted(bytes) }
        tokens = refilled(now: now)
        updated = max(updated, now)
        if tokens >= 1 {
            let granted = min(bytes, Int(tokens))
            tokens -= Double(granted)
            return .granted(granted)
        }
        let needed = Double(min(Int64(bytes), burst)) - tokens
        let nanoseconds = (needed / Double(rate) * 1e9).rounded(.up)
        return .wait(until: updated + .nanoseconds(Saturating.rounded(nanoseconds)))
    }

    /// Gives back tokens spent but not used (another bucket on the way refused them).
    public mutating func refund(_ bytes: Int, now: Instant) {
        guard rate != nil, bytes > 0 else { return }
        tokens = min(Double(burst), refilled(now: now) + Double(bytes))
        updated = max(updated, now)
    }

    /// Changes the limit, keeping the tokens accrued so far (capped at the new burst); a bucket that was
    /// unlimited starts full.
    public mutating func setRate(_ newRate: Int64?, burst newBurst: Int64? = nil, now: Instant) {
        let current = refilled(now: now)
        let wasUnlimited = rate == nil
        updated = max(updated, now)
        rate = newRate.flatMap { $0 > 0 ? $0 : nil }
        burst = max(1, newBurst ?? rate ?? 1)
        tokens = wasUnlimited || rate == nil ? Double(burst) : min(current, Double(burst))
    }

    private func refilled(now: Instant) -> Double {
        guard let rate, now > updated else { return tokens }
        return min(Double(burst), tokens + Double(rate) * (now - updated).seconds)
    }
}
