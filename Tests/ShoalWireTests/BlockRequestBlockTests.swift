import ShoalCore
import Testing

@testable import ShoalWire

@Suite("Block requests and blocks")
struct BlockRequestBlockTests {
    @Test func convertsBothWays() throws {
        let block = Block(piece: 7, offset: 32768, length: 16384)
        let request = try #require(BlockRequest(block))
        #expect(request == BlockRequest(piece: 7, offset: 32768, length: 16384))
        #expect(request.block == block)
        let edge = BlockRequest(piece: .max, offset: .max, length: .max)
        #expect(BlockRequest(edge.block) == edge)
    }

    @Test func refusesWhatTheWireCannotCarry() {
        #expect(BlockRequest(Block(piece: -1, offset: 0, length: 1)) == nil)
        #expect(BlockRequest(Block(piece: 0, offset: Int(UInt32.max) + 1, length: 1)) == nil)
        #expect(BlockRequest(Block(piece: 0, offset: 0, length: -5)) == nil)
    }
}
