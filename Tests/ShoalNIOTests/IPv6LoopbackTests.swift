#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ShoalCore
import Testing

/// The NIO runtime over IPv6: a seed listening on `::` serves a leecher that dials `[::1]`.
@Suite("IPv6 loopback")
struct IPv6LoopbackTests {
    /// Whether a TCP socket can be bound on ::1 here (containers often run without IPv6).
    static let ipv6LoopbackAvailable: Bool = {
        #if canImport(Glibc)
        let stream = Int32(SOCK_STREAM.rawValue)
        #else
        let stream = SOCK_STREAM
        #endif
        let fd = socket(AF_INET6, stream, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = 0
        address.sin6_addr = in6addr_loopback
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
        return result == 0
    }()

    @Test(.enabled(if: ipv6LoopbackAvailable, "::1 is not available on this machine"))
    func aLeecherDownloadsFromASeedOverIPv6() async throws {
        let torrent = try TestTorrent.standard(seed: 40)
        defer { torrent.remove() }
        try await Cleanup.run { cleanup in
            let seed = cleanup.add(try await RuntimePeer.seed(torrent, listenOn: "::", seed: 41)) {
                await $0.shutdown()
            }
            seed.start()
            let port = try #require(seed.listener?.port)
            let address = try #require(PeerAddress("[::1]:\(port)"))
            #expect(address.isIPv6)
            let leecher = cleanup.add(try await RuntimePeer.leecher(torrent, seed: 42)) { await $0.shutdown() }
            leecher.start(peers: [address])

            let completed = await eventually { leecher.reports.completed }
            #expect(completed, "the download over IPv6 did not complete in 20 s")
            #expect(torrent.isDownloaded(in: leecher.directory), "the downloaded files differ from the source")
            let reports = leecher.reports.snapshot
            #expect(reports.failures.isEmpty)
            #expect(Set(reports.verified) == Set(0..<torrent.pieceCount))
            #expect(reports.peerCounts.contains(1), "the leecher never had its IPv6 peer")
        }
    }
}
