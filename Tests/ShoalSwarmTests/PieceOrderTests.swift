import ShoalTestSupport
import Testing

@testable import ShoalSwarm

@Suite("PieceOrder")
struct PieceOrderTests {
    @Test func bucketsFollowAvailability() {
        var order = PieceOrder(pieceCount: 6)
        var random = SeededGenerator(seed: 1)
        let counts: [Int32] = [2, 0, 1, 2, 0, 3]
        order.rebuild(counts: counts, classOf: { $0 == 4 ? nil : ($0 == 5 ? 0 : 1) }, random: &random)
        let normal = order.classes[1]
        #expect(normal.bucketCount == 3)
        #expect(Set(normal.pieces[normal.start(0)..<normal.end(0)]) == [1])
        #expect(Set(normal.pieces[normal.start(1)..<normal.end(1)]) == [2])
        #expect(Set(normal.pieces[normal.start(2)..<normal.end(2)]) == [0, 3])
        #expect(order.classes[0].pieces == [5])
        #expect(order.position[4] == -1)
        #expect(order.count == 5)
    }

    @Test func randomMovesKeepTheStructure() {
        var random = SeededGenerator(seed: 7)
        let pieceCount = 60
        var counts = [Int32](repeating: 0, count: pieceCount)
        var classes = [Int?](repeating: nil, count: pieceCount)
        for piece in 0..<pieceCount {
            counts[piece] = Int32(random.next(upTo: 5))
            classes[piece] = random.next(upTo: 4) == 0 ? nil : random.next(upTo: 2)
        }
        var order = PieceOrder(pieceCount: pieceCount)
        order.rebuild(counts: counts, classOf: { classes[$0] }, random: &random)
        var problems: [String] = []
        for step in 0..<3000 {
            let piece = random.next(upTo: pieceCount)
            let availability = Int(counts[piece])
            switch random.next(upTo: 4) {
            case 0:
                if let c = classes[piece] { order.increment(piece, class: c, from: availability) }
                counts[piece] += 1
            case 1:
                guard availability > 0 else { continue }
                if let c = classes[piece] { order.decrement(piece, class: c, from: availability) }
                counts[piece] -= 1
            case 2:
                if let c = classes[piece] { order.remove(piece, class: c, availability: availability) }
                let newClass = random.next(upTo: 3) == 0 ? nil : random.next(upTo: 2)
                if let newClass { order.insert(piece, class: newClass, availability: availability) }
                classes[piece] = newClass
            default:
                if random.next(upTo: 50) == 0 {
                    order.rebuild(counts: counts, classOf: { classes[$0] }, random: &random)
                }
            }
            problems += order.violations(counts: counts, classOf: { classes[$0] }).map { "step \(step): \($0)" }
            if !problems.isEmpty { break }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
    }

    @Test func rebuildShufflesWithinBuckets() {
        var firstSlots = Set<Int32>()
        for seed in 0..<50 {
            var order = PieceOrder(pieceCount: 20)
            var random = SeededGenerator(seed: UInt64(seed))
            order.rebuild(counts: [Int32](repeating: 1, count: 20), classOf: { _ in 1 }, random: &random)
            firstSlots.insert(order.classes[1].pieces[order.classes[1].start(1)])
        }
        #expect(firstSlots.count > 10)
    }
}
