import NIOCore

/// Buffers that disk reads for peers fill, used again once nobody holds a slice of them any more.
///
/// A seed reads up to ``DiskJob/maxReadRun`` bytes at a time and sends them as block slices; a fresh
/// buffer for every read made glibc map, fault in, zero and unmap a megabyte again and again (a third of
/// the seed's CPU time moving 1 GiB on loopback). A pooled buffer is reused only when its storage is
/// uniquely owned by the pool (`modifyIfUniquelyOwned`), that is once every block sliced from it has been
/// sent and released, so reuse never changes bytes a peer is still being sent. When every pooled buffer
/// is still in use, a read gets a buffer of its own, as before, so the pool bounds memory at
/// `capacity` × `bufferSize` and never makes a read wait.
///
/// Not thread-safe: one reads lane owns it and runs one batch at a time (on whichever thread-pool thread),
/// so that batches use it one after the other.
final class ReadBufferPool: @unchecked Sendable {
    let capacity: Int
    let bufferSize: Int
    private var buffers: [ByteBuffer] = []
    private let allocator = ByteBufferAllocator()
    /// Where the next search starts: the buffer after the last one used, which is the likeliest to be free.
    private var next = 0

    init(capacity: Int = 16, bufferSize: Int = DiskJob.maxReadRun) {
        self.capacity = capacity
        self.bufferSize = bufferSize
    }

    /// A buffer holding `length` bytes that `fill` wrote into its writable space (through
    /// `writeWithUnsafeMutableBytes`), pooled when a pooled one is free and large enough.
    func buffer<Failure: Error>(
        length: Int, fill: (UnsafeMutableRawBufferPointer) throws(Failure) -> Void
    ) throws(Failure) -> ByteBuffer {
        func write(into buffer: inout ByteBuffer) throws(Failure) {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { (bytes) throws(Failure) in
                try fill(UnsafeMutableRawBufferPointer(rebasing: bytes.prefix(length)))
                return length
            }
        }
        if length <= bufferSize {
            for step in 0..<buffers.count {
                let index = (next + step) % buffers.count
                let reused = try buffers[index].modifyIfUniquelyOwned { (buffer) throws(Failure) -> Bool in
                    buffer.clear()
                    try write(into: &buffer)
                    return true
                }
                if reused == true {
                    next = index + 1
                    return buffers[index]
                }
            }
            if buffers.count < capacity {
                var buffer = allocator.buffer(capacity: bufferSize)
                try write(into: &buffer)
                buffers.append(buffer)
                next = buffers.count
                return buffer
            }
        }
        var buffer = allocator.buffer(capacity: length)
        try write(into: &buffer)
        return buffer
    }
}
