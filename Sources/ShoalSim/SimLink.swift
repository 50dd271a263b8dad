import ShoalCore

/// A simulated peer's access link: what it can send and receive per second, and how far it is from the
/// network's core. A connection between two peers has the latency of both links one way.
public struct SimLink: Sendable, Hashable {
    /// Bytes per second this peer can send (`.infinity`: no limit).
    public var upload: Double
    /// Bytes per second this peer can receive (`.infinity`: no limit).
    public var download: Double
    /// One-way delay from this peer to the network's core.
    public var latency: Interval
    /// The chance that a chunk is lost and must be sent again (it then arrives a retransmission timeout
    /// later; TCP keeps the order, so the chunks behind it wait too).
    public var loss: Double
    /// A random extra delay up to this much per chunk (the order of a connection's bytes is kept).
    public var jitter: Interval

    public init(upload: Double, download: Double, latency: Interval = .milliseconds(10), loss: Double = 0, jitter: Interval = .zero) {
        self.upload = upload
        self.download = download
        self.latency = latency
        self.loss = loss
        self.jitter = jitter
    }

    /// The time to put `bytes` through a link of `rate` bytes per second.
    static func transmissionTime(_ bytes: Int, rate: Double) -> Interval {
        guard rate.isFinite else { return .zero }
        guard rate > 0 else { return .nanoseconds(.max) }
        return .nanoseconds(Saturating.rounded(Double(bytes) * 1e9 / rate))
    }
}
