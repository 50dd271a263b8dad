import ShoalCore
import ShoalTestSupport

@testable import ShoalSwarm

/// A bitfield from a string of `1` (has) and anything else (lacks).
func bits(_ pattern: String) -> Bitfield {
    var field = Bitfield(count: pattern.count)
    for (index, character) in pattern.enumerated() where character == "1" { field.set(index) }
    return field
}

/// A picker set up from libtorrent-style strings, one character per piece:
/// - `availability`: a digit, the number of peers that have the piece; peer `k` (1...9) has every piece
///   whose digit is at least `k`, so `fixturePeer(k)` and `fixtureBitfield(k, ...)` name them;
/// - `have`: `*` for a piece we have;
/// - `priority`: `0` skip, `1` normal, `2` high (missing characters are normal);
/// - `partial`: a hex digit, the mask of received blocks (bit `j` is block `j`), sent by `pastPeer`.
/// Pieces are `blocksPerPiece` blocks of 16 KiB. Random first is off unless `randomFirstPieces` says so.
struct PickerFixture {
    static let pastPeer: PeerKey = 100

    var picker: PiecePicker
    let availability: [Int]

    init(
        availability: String, have: String = "", priority: String = "", partial: String = "",
        blocksPerPiece: Int = 4, configuration: PiecePicker.Configuration = .init(randomFirstPieces: 0)
    ) {
        let counts = availability.map { Int(String($0))! }
        let pieceLength = blocksPerPiece * PieceGeometry.blockLength
        let geometry = PieceGeometry(
            pieceCount: counts.count, pieceLength: pieceLength, totalLength: Int64(counts.count * pieceLength))!
        var haveField = Bitfield(count: counts.count)
        for (index, character) in have.enumerated() where character == "*" { haveField.set(index) }
        picker = PiecePicker(geometry: geometry, have: haveField, configuration: configuration)
        self.availability = counts
        for k in 1...9 {
            let field = fixtureBitfield(k)
            if !field.isEmpty { picker.peerBitfield(field, peer: PeerKey(k)) }
        }
        for (index, character) in priority.enumerated() {
            let value = Int(String(character))!
            picker.setPriority(value == 0 ? .skip : value == 1 ? .normal : .high, of: index)
        }
        for (index, character) in partial.enumerated() where character != " " {
            let mask = Int(String(character), radix: 16)!
            for block in 0..<blocksPerPiece where mask & (1 << block) != 0 {
                _ = picker.blockReceived(geometry.block(piece: index, index: block), from: Self.pastPeer)
            }
        }
    }

    /// The pieces of fixture peer `k`.
    func fixtureBitfield(_ k: Int) -> Bitfield {
        var field = Bitfield(count: availability.count)
        for (index, count) in availability.enumerated() where count >= k { field.set(index) }
        return field
    }

    /// Picks for `peer` with pieces `peerHas` (every piece by default), with a fixed seed unless given.
    mutating func pick(
        _ count: Int, peer: PeerKey = 50, peerHas: Bitfield? = nil, fast: Bool = false, seed: UInt64 = 1
    ) -> [Block] {
        var random = SeededGenerator(seed: seed)
        let field = peerHas ?? Bitfield(count: availability.count, allSet: true)
        return picker.pick(for: peer, peerHas: field, count: count, fast: fast, random: &random)
    }

    /// Picks and records the requests.
    @discardableResult
    mutating func request(
        _ count: Int, peer: PeerKey = 50, peerHas: Bitfield? = nil, fast: Bool = false, seed: UInt64 = 1
    ) -> [Block] {
        let blocks = pick(count, peer: peer, peerHas: peerHas, fast: fast, seed: seed)
        for block in blocks { picker.blockRequested(block, by: peer, fast: fast) }
        return blocks
    }
}

extension [Block] {
    /// The distinct pieces, in order of first appearance.
    var pieces: [Int] {
        var seen = Set<Int>()
        return map(\.piece).filter { seen.insert($0).inserted }
    }
}

/// Shorthand for block `index` of `piece` in a picker's geometry.
func block(_ picker: PiecePicker, _ piece: Int, _ index: Int) -> Block {
    picker.geometry.block(piece: piece, index: index)
}
