import Testing

@testable import ShoalCore

@Suite("PieceGeometry")
struct PieceGeometryTests {
    @Test func theLastPieceAndItsLastBlockMayBeShort() throws {
        // 2.5 pieces of 40 KiB: blocks of 16, 16, 8 KiB; the last piece is 20 KiB: 16 + 4.
        let geometry = try #require(PieceGeometry(pieceCount: 3, pieceLength: 40 << 10, totalLength: 100 << 10))
        #expect(geometry.blocksPerPiece == 3)
        #expect(geometry.length(ofPiece: 0) == 40 << 10)
        #expect(geometry.length(ofPiece: 2) == 20 << 10)
        #expect(geometry.blocks(ofPiece: 0).map(\.length) == [16 << 10, 16 << 10, 8 << 10])
        #expect(geometry.blocks(ofPiece: 2).map(\.length) == [16 << 10, 4 << 10])
        #expect(geometry.blocks(ofPiece: 2).map(\.offset) == [0, 16 << 10])
        #expect(geometry.blockCount(ofPiece: 3) == 0)
        #expect(geometry.length(ofPiece: -1) == 0)
    }

    @Test func refusesInconsistentNumbers() {
        #expect(PieceGeometry(pieceCount: 2, pieceLength: 16384, totalLength: 16385) != nil)
        #expect(PieceGeometry(pieceCount: 3, pieceLength: 16384, totalLength: 16385) == nil)
        #expect(PieceGeometry(pieceCount: 1, pieceLength: 16384, totalLength: 16385) == nil)
        #expect(PieceGeometry(pieceCount: 0, pieceLength: 16384, totalLength: 0) != nil)
        #expect(PieceGeometry(pieceCount: 1, pieceLength: 0, totalLength: 1) == nil)
        #expect(PieceGeometry(pieceCount: 1, pieceLength: 16384, totalLength: -1) == nil)
    }

    @Test func piecesSmallerThanABlockHaveOneBlock() throws {
        let geometry = try #require(PieceGeometry(pieceCount: 3, pieceLength: 1000, totalLength: 2500))
        #expect(geometry.blocks(ofPiece: 0) == [Block(piece: 0, offset: 0, length: 1000)])
        #expect(geometry.blocks(ofPiece: 2) == [Block(piece: 2, offset: 0, length: 500)])
    }

    @Test func blockIndexChecksEveryField() throws {
        let geometry = try #require(PieceGeometry(pieceCount: 3, pieceLength: 40 << 10, totalLength: 100 << 10))
        #expect(geometry.blockIndex(of: Block(piece: 0, offset: 32 << 10, length: 8 << 10)) == 2)
        #expect(geometry.blockIndex(of: Block(piece: 2, offset: 16 << 10, length: 4 << 10)) == 1)
        #expect(geometry.blockIndex(of: Block(piece: 0, offset: 32 << 10, length: 16 << 10)) == nil, "too long")
        #expect(geometry.blockIndex(of: Block(piece: 0, offset: 100, length: 16 << 10)) == nil, "off the grid")
        #expect(geometry.blockIndex(of: Block(piece: 0, offset: 48 << 10, length: 16 << 10)) == nil, "past the piece")
        #expect(geometry.blockIndex(of: Block(piece: 3, offset: 0, length: 16 << 10)) == nil, "no such piece")
        #expect(geometry.blockIndex(of: Block(piece: -1, offset: 0, length: 16 << 10)) == nil)
        #expect(geometry.blockIndex(of: Block(piece: 0, offset: -16384, length: 16 << 10)) == nil)
    }
}
