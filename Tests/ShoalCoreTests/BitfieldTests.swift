import ShoalTestSupport
import Testing

@testable import ShoalCore

@Suite("Bitfield")
struct BitfieldTests {
    @Test func usesTheWireBitOrder() {
        var field = Bitfield(count: 10)
        field.set(0)
        field.set(7)
        field.set(9)
        #expect(field.bytes == [0b1000_0001, 0b0100_0000])
        #expect(field.description == "1000000101")
        #expect(field.setIndices == [0, 7, 9])
        #expect(field.setCount == 3)
    }

    @Test func readsTheWireFormStrictly() throws {
        let field = try #require(Bitfield(count: 10, bytes: [0xFF, 0xC0]))
        #expect(field.isComplete)
        #expect(Bitfield(count: 10, bytes: [0xFF, 0xE0]) == nil, "a spare bit is set")
        #expect(Bitfield(count: 10, bytes: [0xFF]) == nil, "too short")
        #expect(Bitfield(count: 10, bytes: [0xFF, 0, 0]) == nil, "too long")
        #expect(Bitfield(count: 0, bytes: [UInt8]())?.isComplete == true)
    }

    @Test func setAndClearReportChanges() {
        var field = Bitfield(count: 3)
        var changes: [Bool] = []
        changes.append(field.set(1))
        changes.append(field.set(1))
        changes.append(field.set(3))  // out of range is ignored
        changes.append(field.set(-1))
        changes.append(field.clear(1))
        changes.append(field.clear(1))
        #expect(changes == [true, false, false, false, true, false])
        #expect(field.isEmpty)
        #expect(!field[100])
    }

    @Test func allSetKeepsSpareBitsClear() {
        let field = Bitfield(count: 13, allSet: true)
        #expect(field.bytes == [0xFF, 0xF8])
        #expect(field.setCount == 13)
        #expect(Bitfield(count: 13, bytes: field.bytes) == field)
    }

    @Test func countMatchesTheBitsUnderRandomOperations() {
        var random = SeededGenerator(seed: 3)
        var field = Bitfield(count: 77)
        var model = Set<Int>()
        for _ in 0..<2000 {
            let index = random.next(upTo: 80)
            if random.next(upTo: 2) == 0 {
                let changed = field.set(index)
                #expect(changed == (index < 77 && model.insert(index).inserted))
            } else {
                let changed = field.clear(index)
                #expect(changed == (model.remove(index) != nil))
            }
        }
        #expect(field.setCount == model.count)
        #expect(field.setIndices == model.sorted())
        #expect(Bitfield(count: 77, bytes: field.bytes) == field)
    }
}

@Suite("Peer id")
struct PeerIDTests {
    @Test func makesBEP20Ids() {
        var random = SeededGenerator(seed: 1)
        let id = PeerID.shoal(using: &random)
        #expect(id.bytes.count == 20)
        #expect(Array(id.bytes.prefix(8)) == Array("-SH0100-".utf8))
        #expect(id.azureusStyleClient == "SH 0100")
        #expect(PeerID.shoal(using: &random) != id)
        #expect(PeerID(bytes: [UInt8](repeating: 0, count: 19)) == nil)
        #expect(PeerID(bytes: [UInt8](repeating: 0, count: 20))?.azureusStyleClient == nil)
        #expect(PeerID(bytes: Array("-TR3000-".utf8) + [UInt8](repeating: 0x25, count: 12))?.description
            == "-TR3000-" + String(repeating: "%25", count: 12))
    }
}
