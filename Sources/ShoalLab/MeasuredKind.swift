/// The three kinds of distribution time a `DistributionMeasurement` holds, each with the lecture bound it is
/// compared with.
enum MeasuredKind: CaseIterable, Sendable {
    /// The real engine in simulation, peers not uploading: compared with d_cs.
    case clientServer
    /// The real engine in simulation, peers trading: compared with d_P2P.
    case peerToPeer
    /// Real Shoal processes on loopback, peers trading: compared with d_P2P.
    case realPeerToPeer

    /// The name in tables and the legend.
    var name: String {
        switch self {
        case .clientServer: "client-server"
        case .peerToPeer: "P2P"
        case .realPeerToPeer: "real P2P"
        }
    }

    /// The name of the bound this kind is compared with.
    var boundName: String {
        self == .clientServer ? "d_cs" : "d_P2P"
    }

    /// The times measured in `measurement`, in seconds.
    func times(in measurement: DistributionMeasurement) -> [Double] {
        switch self {
        case .clientServer: measurement.clientServer
        case .peerToPeer: measurement.peerToPeer
        case .realPeerToPeer: measurement.realPeerToPeer
        }
    }

    /// The bound this kind is compared with, in seconds.
    func bound(in measurement: DistributionMeasurement) -> Double {
        self == .clientServer ? measurement.clientServerBound : measurement.peerToPeerBound
    }
}
