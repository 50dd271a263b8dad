import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalSwarm

@Suite struct PeerTableTests {
    /// Random inserts, replacements, removals and in-place changes, checked after each step against a
    /// dictionary: the same values by key, keys ascending, values aligned with their keys.
    @Test(arguments: [1, 2, 3])
    func behavesAsADictionaryKeptInKeyOrder(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var table = PeerTable<String>()
        var model: [PeerKey: String] = [:]
        for step in 0..<3000 {
            let key = PeerKey(Int.random(in: 0..<60, using: &random))
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let value = "v\(step)"
                #expect(table.updateValue(value, forKey: key) == model.updateValue(value, forKey: key))
            case 4..<7:
                #expect(table.removeValue(forKey: key) == model.removeValue(forKey: key))
            case 7:
                if let index = table.index(forKey: key) {
                    table.values[index] += "!"
                    model[key]! += "!"
                } else {
                    #expect(model[key] == nil)
                }
            default:
                #expect(table.index(forKey: key).map { table.values[$0] } == model[key])
                #expect(table.contains(key) == (model[key] != nil))
            }
            #expect(table.count == model.count)
            #expect(table.keys == model.keys.sorted())
            let aligned = zip(table.keys, table.values).allSatisfy { model[$0.0] == $0.1 }
            #expect(aligned)
            if table.keys != model.keys.sorted() || !aligned { return }
        }
    }

    @Test func emptyTableFindsNothing() {
        var table = PeerTable<Int>()
        #expect(table.isEmpty)
        #expect(table.index(forKey: 1) == nil)
        #expect(table.removeValue(forKey: 1) == nil)
        table.updateValue(5, forKey: 3)
        #expect(table.index(forKey: 3) == 0)
        #expect(table.index(forKey: 2) == nil && table.index(forKey: 4) == nil)
    }
}
