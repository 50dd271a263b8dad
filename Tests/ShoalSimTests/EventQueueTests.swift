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

    /// As a simulation uses it: events scheduled while others are taken, many of them at the instant just
    /// taken (those wait in the queue's line beside the heap). The order must be exactly what sorting every
    /// event by (time, scheduling order) gives, as a queue of one heap gave.
    @Test func interleavedSchedulingAtTheCurrentInstantKeepsTheOrder() {
        var random = SeededGenerator(seed: 11)
        var queue = EventQueue<Int>()
        var scheduled: [(time: Int64, index: Int)] = []
        var nextIndex = 0
        func schedule(at time: Int64) {
            queue.schedule(nextIndex, at: Instant(nanoseconds: time))
            scheduled.append((time, nextIndex))
            nextIndex += 1
        }
        for _ in 0..<50 { schedule(at: Int64.random(in: 0..<20, using: &random)) }
        var popped: [(time: Int64, index: Int)] = []
        while let (time, index) = queue.pop(), popped.count < 20_000 {
            popped.append((time.nanoseconds, index))
            #expect(popped.count < 2 || popped[popped.count - 2].time <= time.nanoseconds, "time never goes back")
            guard nextIndex < 5000 else { continue }
            // Now, a little later, or the same instant again: each popped event schedules up to three.
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                switch Int.random(in: 0..<4, using: &random) {
                case 0, 1: schedule(at: time.nanoseconds)
                default: schedule(at: time.nanoseconds + Int64.random(in: 1..<5, using: &random))
                }
            }
        }
        #expect(queue.isEmpty)
        #expect(popped.count == scheduled.count)
        let expected = scheduled.sorted { ($0.time, $0.index) < ($1.time, $1.index) }.map(\.index)
        let inOrder = popped.map(\.index) == expected
        #expect(inOrder)
    }
}
