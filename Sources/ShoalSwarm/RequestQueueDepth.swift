import ShoalCore

/// How many requests to keep outstanding with a peer: enough to cover `queueTime` of data at the peer's
/// measured rate (BEP 3 "pipelining"; libtorrent's `request_queue_time`, 3 s), within [`minimum`, `maximum`]
/// blocks, and never more than the peer says it accepts (`reqq`, BEP 10).
public struct RequestQueueDepth: Hashable, Sendable {
    /// Seconds of data to keep requested.
    public var queueTime: Interval
    /// The fewest blocks to keep requested, even from a peer not yet measured.
    public var minimum: Int
    /// The most blocks to keep requested.
    public var maximum: Int

    public init(queueTime: Interval = .seconds(3), minimum: Int = 2, maximum: Int = 500) {
        self.queueTime = queueTime
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
    }

    /// The number of blocks to keep requested from a peer that sends `rate` bytes per second.
    /// - Parameter peerLimit: the peer's `reqq` from its extension handshake, if it sent one; values below 1
    ///   are ignored as nonsense.
    public func depth(rate: Double, peerLimit: Int? = nil) -> Int {
        let wanted: Int
        let blocks = (rate * queueTime.seconds / Double(PieceGeometry.blockLength)).rounded(.up)
        if blocks.isNaN || blocks <= Double(minimum) {
            wanted = minimum
        } else if blocks >= Double(maximum) {
            wanted = maximum
        } else {
            wanted = Int(blocks)
        }
        guard let peerLimit, peerLimit >= 1 else { return wanted }
        return min(wanted, peerLimit)
    }
}
