import ShoalCore
import Testing

@testable import ShoalWire

/// The indexed queue of our requests: order, lookups and counts must match a plain array through any mix
/// of appends, removals and cancels (including the compactions it does along the way).
@Suite("Outstanding requests")
struct OutstandingRequestsTests {
    private func block(_ index: Int) -> BlockRequest {
        BlockRequest(piece: UInt32(index / 8), offset: UInt32(index % 8) * 16384, length: 16384)
    }

    @Test func keepsSendingOrderAndFindsEachBlock() {
        var queue = OutstandingRequests()
        for index in 0..<5 { queue.append(.init(block: block(index), sentAt: Instant(nanoseconds: Int64(index)))) }
        queue.remove(block(1))
        let first = queue.cancel(block(3), now: Instant(nanoseconds: 99))
        let second = queue.cancel(block(3), now: Instant(nanoseconds: 100))
        #expect(first)
        #expect(!second, "cancelled once")
        #expect(queue.entries.map(\.block) == [block(0), block(2), block(3), block(4)])
        #expect(queue.live == [block(0), block(2), block(4)])
        #expect(queue.count == 4 && queue.liveCount == 3 && queue.cancelledCount == 1)
        #expect(queue.entry(for: block(3))?.cancelledAt == Instant(nanoseconds: 99))
        #expect(queue.entry(for: block(1)) == nil)
        let again = queue.remove(block(1))
        #expect(again == nil)
    }

    @Test func matchesAPlainArrayThroughRandomUse() {
        var random = SplitMix64(seed: 5)
        var queue = OutstandingRequests()
        var model: [(block: BlockRequest, cancelledAt: Instant?)] = []
        var next = 0
        for step in 0..<20_000 {
            let now = Instant(nanoseconds: Int64(step))
            switch random.next() % 4 {
            case 0 where model.count < 250, 1 where model.count < 250:
                queue.append(.init(block: block(next), sentAt: now))
                model.append((block(next), nil))
                next += 1
            case 2 where !model.isEmpty:
                // Mostly the oldest (answers come in order), sometimes any.
                let index = random.next() % 3 == 0 ? Int(random.next() % UInt64(model.count)) : 0
                let removed = queue.remove(model[index].block)
                #expect(removed != nil)
                model.remove(at: index)
            case 3 where !model.isEmpty:
                let index = Int(random.next() % UInt64(model.count))
                let cancelled = queue.cancel(model[index].block, now: now)
                #expect(cancelled == (model[index].cancelledAt == nil))
                if model[index].cancelledAt == nil { model[index].cancelledAt = now }
            default:
                break
            }
            if step % 97 == 0 {
                let same = queue.entries.map(\.block) == model.map(\.block)
                #expect(same, "order at step \(step)")
                #expect(queue.liveCount == model.filter { $0.cancelledAt == nil }.count)
                // A lower bound of the earliest cancellation, nil when none is left.
                if let earliest = model.compactMap(\.cancelledAt).min() {
                    #expect(queue.earliestCancellation.map { $0 <= earliest } == true, "step \(step)")
                } else {
                    #expect(queue.earliestCancellation == nil, "step \(step)")
                }
            }
        }
        #expect(queue.count == model.count)
        #expect(queue.live == model.filter { $0.cancelledAt == nil }.map(\.block))
    }

    @Test func removingExpiredCancellationsMakesTheEarliestExact() {
        var queue = OutstandingRequests()
        for index in 0..<4 { queue.append(.init(block: block(index), sentAt: .zero)) }
        _ = queue.cancel(block(1), now: .seconds(5))
        _ = queue.cancel(block(2), now: .seconds(9))
        _ = queue.cancel(block(3), now: .seconds(7))
        #expect(queue.earliestCancellation == .seconds(5))
        queue.removeAll { $0.cancelledAt.map { $0 < .seconds(6) } ?? false }
        #expect(queue.earliestCancellation == .seconds(7))
        queue.remove(block(3))
        queue.remove(block(2))
        #expect(queue.earliestCancellation == nil, "no cancelled entry left")
    }
}
