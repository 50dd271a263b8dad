import NIOCore
import ShoalCore

/// The pieces a peer has announced (BEP 3 `bitfield` and `have`, BEP 6 `have all` and `have none`),
/// also before the piece count is known (a magnet link before its metadata): announcements are then
/// kept raw, bounded by ``WireLimits/maxBitfieldBytes``, and checked when the count arrives.
struct PeerPieces: Sendable {
    /// The peer's pieces, once the count is known.
    private(set) var known: Bitfield?
    /// While the count is unknown: the bitfield's bytes, if one came.
    private var pendingBitfield: [UInt8]?
    /// While the count is unknown: `have all` came.
    private var pendingAll = false
    /// While the count is unknown: the pieces announced by `have`, one bit each, grown as needed.
    private var pendingHaves: [UInt8] = []

    init(pieceCount: Int?) {
        known = pieceCount.map { Bitfield(count: $0) }
    }

    /// Whether the peer has announced `piece` (false while the count is unknown).
    func has(_ piece: UInt32) -> Bool {
        known?[Int(piece)] ?? false
    }

    /// Takes a `bitfield`; returns the peer's pieces when the count is known.
    mutating func setBitfield(_ bytes: ByteBuffer, maxBytes: Int) throws(WireError) -> Bitfield? {
        if let count = known?.count {
            guard let field = Bitfield(count: count, bytes: bytes.readableBytesView) else {
                let expected = PeerMessageDecoder.bitfieldBytes(count)
                if bytes.readableBytes != expected { throw WireError(.wrongLength(expected: 1 + expected)) }
                throw WireError(.bitfieldSpareBits)
            }
            known = field
            return field
        }
        guard bytes.readableBytes <= maxBytes else { throw WireError(.messageTooLong(limit: 1 + maxBytes)) }
        pendingBitfield = Array(bytes.readableBytesView)
        return nil
    }

    /// Takes `have all` (true) or `have none` (false); returns the peer's pieces when the count is known.
    mutating func setAll(_ all: Bool) -> Bitfield? {
        if let count = known?.count {
            known = Bitfield(count: count, allSet: all)
            return known
        }
        pendingAll = all
        return nil
    }

    /// Takes a `have`; returns whether the piece is newly announced (always false while the count
    /// is unknown, when it is only recorded).
    mutating func have(_ piece: UInt32, maxBytes: Int) throws(WireError) -> Bool {
        if let count = known?.count {
            guard Int(piece) < count else { throw WireError(.pieceIndexOutOfRange(piece, pieceCount: count)) }
            return known!.set(Int(piece))
        }
        let index = Int(piece)
        guard index < maxBytes * 8 else { throw WireError(.pieceIndexOutOfRange(piece, pieceCount: maxBytes * 8)) }
        if pendingAll { return false }
        if pendingHaves.count <= index / 8 {
            pendingHaves.append(contentsOf: repeatElement(0, count: index / 8 + 1 - pendingHaves.count))
        }
        pendingHaves[index / 8] |= 0x80 >> UInt8(index % 8)
        return false
    }

    /// Learns the piece count (once; later calls return the known pieces): checks what was announced
    /// against it and returns the peer's pieces.
    mutating func resolve(pieceCount: Int) throws(WireError) -> Bitfield {
        if let known { return known }
        var field: Bitfield
        if pendingAll {
            field = Bitfield(count: pieceCount, allSet: true)
        } else if let bytes = pendingBitfield {
            let expected = PeerMessageDecoder.bitfieldBytes(pieceCount)
            guard bytes.count == expected else { throw WireError(.wrongLength(expected: 1 + expected)) }
            guard let parsed = Bitfield(count: pieceCount, bytes: bytes) else { throw WireError(.bitfieldSpareBits) }
            field = parsed
        } else {
            field = Bitfield(count: pieceCount)
        }
        for (byteIndex, byte) in pendingHaves.enumerated() where byte != 0 {
            for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                let index = byteIndex * 8 + bit
                guard index < pieceCount else {
                    throw WireError(.pieceIndexOutOfRange(UInt32(index), pieceCount: pieceCount))
                }
                field.set(index)
            }
        }
        known = field
        pendingBitfield = nil
        pendingHaves = []
        return field
    }
}
