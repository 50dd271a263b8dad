import ShoalCore

/// Limits the queries a node answers: per source IP address and in total, each a token bucket (so bursts are
/// allowed and the long-run rate is bounded). The table of sources is bounded; when it is full of active
/// sources, newcomers are refused for a second rather than costing a scan per packet.
struct QueryRateLimiter: Sendable {
    struct Configuration: Hashable, Sendable {
        var perHostRate: Double
        var perHostBurst: Double
        var totalRate: Double
        var totalBurst: Double
        var maxHosts: Int
    }

    private struct Bucket: Sendable {
        var tokens: Double
        var updated: Instant
    }

    let configuration: Configuration
    private var hosts: [NodeAddress.Host: Bucket] = [:]
    private var total: Bucket
    private var refuseNewUntil: Instant = .zero

    init(configuration: Configuration, now: Instant) {
        self.configuration = configuration
        self.total = Bucket(tokens: configuration.totalBurst, updated: now)
    }

    /// Whether a query from `host` may be answered now (and if so, it is counted). Loopback sources are
    /// counted only in the total: tests run many nodes on one host.
    mutating func allow(_ host: NodeAddress.Host, now: Instant) -> Bool {
        Self.refill(&total, rate: configuration.totalRate, burst: configuration.totalBurst, now: now)
        guard total.tokens >= 1 else { return false }
        if !host.isLoopback {
            if var bucket = hosts[host] {
                Self.refill(&bucket, rate: configuration.perHostRate, burst: configuration.perHostBurst, now: now)
                guard bucket.tokens >= 1 else {
                    hosts[host] = bucket
                    return false
                }
                bucket.tokens -= 1
                hosts[host] = bucket
            } else {
                if hosts.count >= configuration.maxHosts {
                    guard now >= refuseNewUntil else { return false }
                    purge(now: now)
                    if hosts.count >= configuration.maxHosts {
                        refuseNewUntil = now + .seconds(1)
                        return false
                    }
                }
                hosts[host] = Bucket(tokens: configuration.perHostBurst - 1, updated: now)
            }
        }
        total.tokens -= 1
        return true
    }

    /// Forgets sources whose buckets have refilled (they are no different from a new source).
    mutating func purge(now: Instant) {
        let refill = configuration.perHostRate > 0 ? configuration.perHostBurst / configuration.perHostRate : 0
        let idle = Interval.seconds(refill)
        hosts = hosts.filter { now - $0.value.updated < idle }
    }

    private static func refill(_ bucket: inout Bucket, rate: Double, burst: Double, now: Instant) {
        let elapsed = Swift.max(0, (now - bucket.updated).seconds)
        bucket.tokens = Swift.min(burst, bucket.tokens + elapsed * rate)
        bucket.updated = now
    }
}
