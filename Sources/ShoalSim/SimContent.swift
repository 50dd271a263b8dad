import Crypto
import NIOCore
import ShoalCore

/// The bytes of a simulated torrent. Every byte is a function of the content's seed and its position, made
/// once and shared by every simulated peer, so a swarm of thousands holds one copy; a block read is a
/// slice of it (no copy). The piece hashes are real SHA-1 over these bytes, so verification in the
/// engine is the real thing.
public final class SimContent: Sendable {
    public let geometry: PieceGeometry
    /// The v1 `pieces` string.
    public let pieceHashes: [UInt8]
    /// An info-hash for the simulated torrent (a digest of the seed and geometry; no info dictionary exists).
    public let infoHash: Digest20
    private let bytes: ByteBuffer

    /// Content of `length` bytes in pieces of `pieceLength`, its bytes drawn from `seed`.
    public init(length: Int64, pieceLength: Int, seed: UInt64) {
        precondition(length > 0 && length <= Int64(Int32.max), "simulated content must fit one buffer")
        let geometry = PieceGeometry(pieceLength: pieceLength, totalLength: length)
        self.geometry = geometry
        var buffer = ByteBufferAllocator().buffer(capacity: Int(length))
        var random = SplitMix64(seed: seed)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(length)) { raw in
            var offset = 0
            while offset < Int(length) {
                var word = random.next()
                let count = min(8, Int(length) - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: count) }
                offset += count
            }
            return Int(length)
        }
        bytes = buffer
        var hashes: [UInt8] = []
        hashes.reserveCapacity(20 * geometry.pieceCount)
        for piece in 0..<geometry.pieceCount {
            let start = piece * pieceLength
            buffer.withUnsafeReadableBytes { raw in
                hashes += Insecure.SHA1.hash(data: UnsafeRawBufferPointer(rebasing: raw[start..<start + geometry.length(ofPiece: piece)]))
            }
        }
        pieceHashes = hashes
        var info = Insecure.SHA1()
        withUnsafeBytes(of: seed.bigEndian) { info.update(bufferPointer: $0) }
        withUnsafeBytes(of: Int64(pieceLength).bigEndian) { info.update(bufferPointer: $0) }
        withUnsafeBytes(of: length.bigEndian) { info.update(bufferPointer: $0) }
        infoHash = Digest20(bytes: Array(info.finalize()))!
    }

    /// The same content in buffers of its own (for a worker thread of a simulation, so that two threads
    /// never count references to one buffer).
    public init(copying other: SimContent) {
        geometry = other.geometry
        pieceHashes = other.pieceHashes.withUnsafeBufferPointer { Array($0) }
        infoHash = other.infoHash
        var buffer = ByteBufferAllocator().buffer(capacity: other.bytes.readableBytes)
        buffer.writeImmutableBuffer(other.bytes)
        bytes = buffer
    }

    /// The bytes of `block` (a slice of the shared content).
    public func data(of block: Block) -> ByteBuffer {
        bytes.getSlice(at: block.piece * geometry.pieceLength + block.offset, length: block.length)!
    }

    /// The expected SHA-1 of a piece.
    public func hash(ofPiece piece: Int) -> Digest20 {
        Digest20(bytes: pieceHashes[20 * piece..<20 * piece + 20])!
    }

    /// Whether `data` holds exactly the bytes of `block`.
    public func matches(_ data: ByteBuffer, block: Block) -> Bool {
        data == self.data(of: block)  // ByteBuffer's == compares the readable bytes (memcmp)
    }
}
