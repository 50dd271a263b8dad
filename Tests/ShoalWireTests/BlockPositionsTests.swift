import ShoalCore
import Testing

@testable import ShoalWire

/// The open-addressing map behind the request queues: it must answer as a `Dictionary` through any mix of
/// insertions, updates and removals (removal shifts entries back, which is where such tables go wrong).
@Suite("Block positions")
struct BlockPositionsTests {
    @Test func findsUpdatesAndRemovesBlocks() {
        var positions = BlockPositions()
        let a = BlockRequest(piece: 1, offset: 0, length: 16384)
        let b = BlockRequest(piece: 1, offset: 16384, length: 16384)
        #expect(positions[a] == nil)
        positions.set(5, for: a)
        positions.set(6, for: b)
        positions.set(7, for: a)
        #expect(positions[a] == 7 && positions[b] == 6 && positions.count == 2)
        #expect(positions.remove(a) == 7)
        #expect(positions.remove(a) == nil)
        #expect(positions[a] == nil && positions[b] == 6 && positions.count == 1)
        positions.removeAll()
        #expect(positions.isEmpty && positions[b] == nil)
    }

    /// Blocks from a small space (so that keys recur and collide), random operations, against a dictionary.
    @Test(arguments: [UInt64(1), 2, 3])
    func matchesADictionaryThroughRandomUse(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var positions = BlockPositions()
        var model: [BlockRequest: Int] = [:]
        func block() -> BlockRequest {
            // A few pieces, blocks at 16 KiB steps, now and then another length: the shapes real requests take.
            let length: UInt32 = random.next() % 8 == 0 ? UInt32(random.next() % 16384) + 1 : 16384
            return BlockRequest(
                piece: UInt32(random.next() % 24), offset: UInt32(random.next() % 32) * 16384, length: length)
        }
        for step in 0..<30_000 {
            let key = block()
            switch random.next() % 5 {
            case 0, 1, 2:
                positions.set(step, for: key)
                model[key] = step
            case 3:
                #expect(positions.remove(key) == model.removeValue(forKey: key))
            default:
                #expect(positions[key] == model[key])
            }
            if step % 500 == 0 {
                #expect(positions.count == model.count)
                let allFound = model.allSatisfy { positions[$0.key] == $0.value }
                #expect(allFound, "step \(step)")
                if random.next() % 8 == 0 {
                    positions.removeAll()
                    model.removeAll()
                }
            }
        }
        let allFound = model.allSatisfy { positions[$0.key] == $0.value }
        #expect(allFound)
        #expect(positions.count == model.count)
    }
}
