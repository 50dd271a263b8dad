/// The lecture's minimum distribution times for giving a file of `fileSize` bytes to `n` peers:
///
///     client-server  d_cs  = max(N·F/u_s, F/d_min)
///     peer-to-peer   d_P2P = max(F/u_s, F/d_min, N·F/(u_s + Σu_i))
///
/// Rates are bytes per second and every peer uploads `peerUpload`; times are seconds.
public struct DistributionBounds: Sendable, Hashable {
    /// F, in bytes.
    public var fileSize: Double
    /// u_s, the server's (the seed's) upload capacity.
    public var serverUpload: Double
    /// u, every peer's upload capacity.
    public var peerUpload: Double
    /// d_min, the slowest peer's download capacity.
    public var minDownload: Double

    public init(fileSize: Double, serverUpload: Double, peerUpload: Double, minDownload: Double) {
        self.fileSize = fileSize
        self.serverUpload = serverUpload
        self.peerUpload = peerUpload
        self.minDownload = minDownload
    }

    /// The lecture's example: F/u is one hour, u_s = 10u, d_min = u_s (so downloads never limit).
    public static func lecture(fileSize: Double) -> DistributionBounds {
        let peerUpload = fileSize / 3600
        return DistributionBounds(
            fileSize: fileSize, serverUpload: 10 * peerUpload, peerUpload: peerUpload, minDownload: 10 * peerUpload)
    }

    /// d_cs for `n` peers, in seconds.
    public func clientServer(peers n: Int) -> Double {
        clientServer(peerCount: Double(n))
    }

    /// d_P2P for `n` peers, in seconds.
    public func peerToPeer(peers n: Int) -> Double {
        peerToPeer(peerCount: Double(n))
    }

    /// d_cs with N taken as a real number, for drawing the bound as a curve; equal to `clientServer(peers:)`
    /// at whole N.
    public func clientServer(peerCount n: Double) -> Double {
        max(n * fileSize / serverUpload, fileSize / minDownload)
    }

    /// d_P2P with N taken as a real number, for drawing the bound as a curve; equal to `peerToPeer(peers:)`
    /// at whole N.
    public func peerToPeer(peerCount n: Double) -> Double {
        max(fileSize / serverUpload, fileSize / minDownload, n * fileSize / (serverUpload + n * peerUpload))
    }
}
