#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Listening ports for local programs (clients under test, the peers of a lab run): TCP and UDP ports
/// free on 127.0.0.1, never handed out twice by this process.
///
/// They come from 20000-32767, below Linux's ephemeral range (32768-60999), so that no outgoing
/// connection can take one between the moment it is picked and the moment its owner binds it.
public enum LoopbackPorts {
    private static let handedOut = Mutex(Set<Int>())

    /// A port that was free on 127.0.0.1 (TCP and UDP) a moment ago.
    public static func free() throws(ProcessError) -> Int {
        for _ in 0..<500 {
            let port = Int.random(in: 20_000..<32_768)
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            guard fresh else { continue }
            if canBind(port: port, stream: true) && canBind(port: port, stream: false) {
                return port
            }
        }
        throw ProcessError("no free loopback port found in 20000-32767")
    }

    /// `count` distinct free ports.
    public static func free(_ count: Int) throws(ProcessError) -> [Int] {
        var ports: [Int] = []
        for _ in 0..<count { ports.append(try free()) }
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
