import ShoalCore
import ShoalSim
import ShoalTestSupport
import Testing

@Suite struct EventQueueTests {
    /// Events come out by time, and in scheduling order among equal times, whatever order they went in.
    @Test func ordersByTimeThenSequence() {
        var random = SeededGenerator(seed: 7)
        var queue = EventQueue<(time: Int64, index: Int)>()
        var scheduled: [(time: Int64, index: Int)] = []
        for index in 0..<2000 {
            let time = Int64.random(in: 0..<50, using: &random)
            queue.schedule((time, index), at: Instant(nanoseconds: time))
            scheduled.append((time, index))
        }
        let expected = scheduled.sorted { ($0.time, $0.index) < ($1.time, $1.index) }.map(\.index)
        var popped: [Int] = []
        while let (time, event) = queue.pop() {
            #expect(time.nanoseconds == event.time)
            popped.append(event.index)
        }
        let inOrder = popped == expected
        #expect(inOrder)
        #expect(queue.isEmpty)
    }
}
