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
        var model: [(block: BlockRequest, cancelled: Bool)] = []
        var next = 0
        for step in 0..<20_000 {
            let now = Instant(nanoseconds: Int64(step))
            switch random.next() % 4 {
            case 0 where model.count < 250, 1 where model.count < 250:
                queue.append(.init(block: block(next), sentAt: now))
                model.append((block(next), false))
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
                #expect(cancelled == !model[index].cancelled)
                model[index].cancelled = true
            default:
                break
            }
            if step % 97 == 0 {
                let same = queue.entries.map(\.block) == model.map(\.block)
                #expect(same, "order at step \(step)")
                #expect(queue.liveCount == model.filter { !$0.cancelled }.count)
            }
        }
        #expect(queue.count == model.count)
        #expect(queue.live == model.filter { !$0.cancelled }.map(\.block))
    }
}
