import ShoalCore
import Testing

@testable import ShoalSwarm

@Suite("TokenBucket")
struct TokenBucketTests {
    let start = Instant.seconds(100)

    @Test func startsFullAndGrantsUpToTheBurst() {
        var bucket = TokenBucket(rate: 1000, burst: 4000, now: start)
        #expect(bucket.available(now: start) == 4000)
        #expect(bucket.consume(upTo: 1500, now: start) == .granted(1500))
        #expect(bucket.consume(upTo: 5000, now: start) == .granted(2500))
        #expect(bucket.consume(upTo: 500, now: start) == .wait(until: start + .milliseconds(500)))
    }

    @Test func refillsAtTheRateUpToTheBurst() {
        var bucket = TokenBucket(rate: 1000, burst: 2000, now: start)
        _ = bucket.consume(upTo: 2000, now: start)
        #expect(bucket.available(now: start + .milliseconds(250)) == 250)
        #expect(bucket.available(now: start + .seconds(60)) == 2000)
        #expect(bucket.consume(upTo: 300, now: start + .milliseconds(250)) == .granted(250))
        #expect(bucket.available(now: start) == 0, "time never runs backwards")
    }

    @Test func waitsForTheAmountAskedCappedAtTheBurst() {
        var bucket = TokenBucket(rate: 1000, burst: 2000, now: start)
        _ = bucket.consume(upTo: 2000, now: start)
        #expect(bucket.consume(upTo: 16384, now: start) == .wait(until: start + .seconds(2)))
        #expect(bucket.consume(upTo: 16384, now: start + .seconds(2)) == .granted(2000))
    }

    @Test func keepsTheRateOverTime() {
        // A sender asking for 16 KiB at each moment it may: it sends `rate` per second plus the first burst.
        var bucket = TokenBucket(rate: 50_000, burst: 20_000, now: start)
        var now = start
        var sent = 0
        while now < start + .seconds(100) {
            switch bucket.consume(upTo: 16384, now: now) {
            case .granted(let bytes): sent += bytes
            case .wait(let until): now = until
            }
        }
        #expect(abs(sent - (100 * 50_000 + 20_000)) <= 16384)
    }

    @Test func unlimitedGrantsEverything() {
        var bucket = TokenBucket.unlimited(now: start)
        #expect(bucket.isUnlimited)
        #expect(bucket.consume(upTo: 1 << 30, now: start) == .granted(1 << 30))
        #expect(TokenBucket(rate: 0, now: start).isUnlimited)
        #expect(TokenBucket(rate: -1, now: start).isUnlimited)
        #expect(bucket.consume(upTo: 0, now: start) == .granted(0))
    }

    @Test func chainsATorrentAndASessionBucket() {
        var torrent = TokenBucket(rate: 10_000, burst: 10_000, now: start)
        var session = TokenBucket(rate: 1000, burst: 1000, now: start)
        guard case .granted(let first) = torrent.consume(upTo: 16384, now: start) else {
            Issue.record("the torrent bucket is full")
            return
        }
        guard case .granted(let second) = session.consume(upTo: first, now: start) else {
            Issue.record("the session bucket is full")
            return
        }
        #expect(second == 1000)
        torrent.refund(first - second, now: start)
        #expect(torrent.available(now: start) == 9000)
    }

    @Test func changingTheRateKeepsAccruedTokens() {
        var bucket = TokenBucket(rate: 1000, now: start)
        #expect(bucket.burst == 1000)
        _ = bucket.consume(upTo: 1000, now: start)
        bucket.setRate(4000, now: start + .milliseconds(500))
        #expect(bucket.available(now: start + .milliseconds(500)) == 500)
        #expect(bucket.available(now: start + .milliseconds(600)) == 900)
        bucket.setRate(nil, now: start + .seconds(1))
        #expect(bucket.available(now: start + .seconds(1)) == .max)
        bucket.setRate(100, burst: 50, now: start + .seconds(2))
        #expect(bucket.available(now: start + .seconds(2)) == 50)
    }
}
