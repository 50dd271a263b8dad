import NIOCore
import ShoalCore
import Testing

@testable import ShoalNIO

@Suite struct PeerAddressSocketAddressTests {
    @Test func ipv4MappedAddressesStayIPv4() throws {
        let socket = try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 6881)
        #expect(PeerAddress(socketAddress: socket) == PeerAddress("127.0.0.1:6881"))
    }

    @Test func ipv6AddressesKeepTheirBrackets() throws {
        let socket = try SocketAddress(ipAddress: "::1", port: 51413)
        let address = try #require(PeerAddress(socketAddress: socket))
        #expect(address == PeerAddress("[::1]:51413"))
        #expect(try address.socketAddress == socket)
    }

    @Test func portZeroIsNoPeer() throws {
        let socket = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        #expect(PeerAddress(socketAddress: socket) == nil)
    }
}
