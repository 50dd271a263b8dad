/// What one real-process distribution run (`RealDistributionRun`) measured: when each leecher had the
/// whole file, how much the processes uploaded, and the lecture's bound for the run's mode.
public struct RealDistributionResult: Sendable, Hashable {
    /// Whether the leechers traded (peer-to-peer) or only the seed served them (client-server).
    public var mode: RealDistributionRun.Mode
    /// Seconds from the moment the leechers were started until each printed its completion line, in
    /// the order of the leechers (leecher 1 first).
    public var completionTimes: [Double]
    /// The bound of the run's mode (d_P2P or d_cs), in seconds.
    public var bound: Double
    /// u_s, the seed's upload cap in bytes per second.
    public var serverUpload: Double
    /// Payload bytes the seed uploaded until it was stopped, right after the last leecher completed
    /// (from the totals it prints when stopped, to a two-hundredth of their unit); nil when it printed none.
    public var seedUploaded: Int64?
    /// Payload bytes each leecher uploaded until it stopped (nil where it printed no totals).
    public var leecherUploaded: [Int64?]

    public init(
        mode: RealDistributionRun.Mode, completionTimes: [Double], bound: Double, serverUpload: Double,
        seedUploaded: Int64?, leecherUploaded: [Int64?]
    ) {
        self.mode = mode
        self.completionTimes = completionTimes
        self.bound = bound
        self.serverUpload = serverUpload
        self.seedUploaded = seedUploaded
        self.leecherUploaded = leecherUploaded
    }

    /// The distribution time: when the last leecher completed, in seconds.
    public var distributionTime: Double { completionTimes.max() ?? 0 }

    /// The distribution time over the bound (1 would be the best possible schedule).
    public var ratio: Double { distributionTime / bound }

    /// The share of the seed's capacity it used until the last leecher completed:
    /// uploaded bytes / (u_s × distribution time); nil when its uploaded bytes are unknown.
    public var seedUtilisation: Double? {
        guard let seedUploaded, distributionTime > 0 else { return nil }
        return Double(seedUploaded) / (serverUpload * distributionTime)
    }
}
