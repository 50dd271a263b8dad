import NIOCore
import Testing

@testable import ShoalNIO

@Suite("ReadBufferPool")
struct ReadBufferPoolTests {
    private struct ReadFailed: Error {}

    /// A buffer of `length` bytes, each `byte`, from the pool.
    private func filled(_ pool: ReadBufferPool, length: Int, with byte: UInt8) -> ByteBuffer {
        pool.buffer(length: length) { bytes in
            bytes.initializeMemory(as: UInt8.self, repeating: byte)
        }
    }

    private func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }

    @Test("a buffer nobody holds any more is filled again in place")
    func reusesReleasedBuffers() {
        let pool = ReadBufferPool(capacity: 2, bufferSize: 1 << 16)
        var first = filled(pool, length: 40000, with: 1)
        let firstAddress = address(first)
        first = ByteBuffer()
        let second = filled(pool, length: 16384, with: 2)
        #expect(address(second) == firstAddress)
        #expect(second.readableBytes == 16384)
        #expect(second.readableBytesView.allSatisfy { $0 == 2 })
    }

    @Test("a buffer whose slice is still held is never written again")
    func neverOverwritesHeldSlices() {
        let pool = ReadBufferPool(capacity: 4, bufferSize: 1 << 16)
        var held: [ByteBuffer] = []
        for round in 0..<4 {
            var buffer = filled(pool, length: 32768, with: UInt8(round + 1))
            held.append(buffer.readSlice(length: 16384)!)
        }
        // Every pooled buffer is held: the next read gets a buffer of its own.
        let extra = filled(pool, length: 32768, with: 9)
        #expect(extra.readableBytesView.allSatisfy { $0 == 9 })
        #expect(!held.map(address).contains(address(extra)))
        for (round, slice) in held.enumerated() {
            #expect(slice.readableBytesView.allSatisfy { $0 == UInt8(round + 1) })
        }
        // Releasing one slice frees exactly its buffer for the next read.
        let released = address(held.remove(at: 2))
        let again = filled(pool, length: 100, with: 7)
        #expect(address(again) == released)
        for (index, slice) in held.enumerated() {
            let round = index < 2 ? index : index + 1
            #expect(slice.readableBytesView.allSatisfy { $0 == UInt8(round + 1) })
        }
    }

    @Test("a read longer than the pooled buffers gets a buffer of its own")
    func longReadsAreNotPooled() {
        let pool = ReadBufferPool(capacity: 2, bufferSize: 4096)
        let long = filled(pool, length: 10000, with: 3)
        #expect(long.readableBytes == 10000)
        #expect(long.readableBytesView.allSatisfy { $0 == 3 })
    }

    @Test("a failed read leaves the pool usable")
    func failedReadKeepsThePool() throws {
        let pool = ReadBufferPool(capacity: 1, bufferSize: 4096)
        _ = filled(pool, length: 4096, with: 1)
        #expect(throws: ReadFailed.self) {
            try pool.buffer(length: 4096) { (_) throws(ReadFailed) in throw ReadFailed() }
        }
        let after = filled(pool, length: 4096, with: 5)
        #expect(after.readableBytesView.allSatisfy { $0 == 5 })
    }
}
