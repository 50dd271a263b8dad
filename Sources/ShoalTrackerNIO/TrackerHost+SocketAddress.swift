import NIOCore
import ShoalCore
import ShoalTracker

extension TrackerHost {
    /// The host of a socket address; an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
    /// client) is IPv4. nil for a Unix socket.
    public init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let address):
            self = .ipv4(UInt32(bigEndian: address.address.sin_addr.s_addr))
        case .v6(let address):
            let (high, low) = withUnsafeBytes(of: address.address.sin6_addr) { bytes in
                (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian,
                 bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian)
            }
            self.init(ipv6High: high, low: low)
        case .unixDomainSocket:
            return nil
        }
    }
}

/// The monotonic clock as the tracker cores count time (the same origin as the torrent runtime's).
enum TrackerClock {
    static func now() -> Instant {
        Instant(nanoseconds: Int64(clamping: NIODeadline.now().uptimeNanoseconds))
    }

    static func deadline(_ instant: Instant) -> NIODeadline {
        .uptimeNanoseconds(UInt64(max(instant.nanoseconds, 0)))
    }
}
