#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Listening ports for the processes of a real run: distinct TCP ports free on 127.0.0.1.
///
/// They come from 20000-32767, below Linux's ephemeral range (32768-60999), so that no outgoing
/// connection can take one between the moment it is picked and the moment its process binds it.
enum LoopbackPorts {
    /// `count` distinct ports that were free (TCP and UDP) a moment ago, drawn with `random`; nil when
    /// 500 draws per port found none.
    static func free<Random: RandomNumberGenerator>(_ count: Int, using random: inout Random) -> [Int]? {
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            if attempts > 500 * count { return nil }
            let port = Int.random(in: 20_000..<32_768, using: &random)
            if !ports.contains(port), canBind(port: port, stream: true), canBind(port: port, stream: false) {
                ports.append(port)
            }
        }
        return ports
    }

    /// Whether a socket can bind 127.0.0.1:`port` now.
    private static func canBind(port: Int, stream: Bool) -> Bool {
        #if canImport(Glibc)
        let type = Int32(stream ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue)
        #else
        let type = stream ? SOCK_STREAM : SOCK_DGRAM
        #endif
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }
}
