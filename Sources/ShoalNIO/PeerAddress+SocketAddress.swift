import NIOCore
import ShoalCore

extension PeerAddress {
    /// The address of a connected socket; nil for a Unix socket or a port of 0.
    init?(socketAddress: SocketAddress) {
        guard let ip = socketAddress.ipAddress, let port = socketAddress.port, port > 0, port <= Int(UInt16.max)
        else { return nil }
        switch socketAddress {
        case .v4: self.init("\(ip):\(port)")
        case .v6:
            // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d; keep it as IPv4.
            if ip.hasPrefix("::ffff:"), let v4 = PeerAddress("\(ip.dropFirst(7)):\(port)") {
                self = v4
            } else {
                self.init("[\(ip)]:\(port)")
            }
        case .unixDomainSocket: return nil
        }
    }

    /// The address to connect to.
    var socketAddress: SocketAddress {
        get throws { try SocketAddress(ipAddress: hostText, port: Int(port)) }
    }
}
