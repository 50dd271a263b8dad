import Testing

@testable import ShoalCore

@Suite("Peer addresses")
struct PeerAddressTests {
    @Test(arguments: [
        ("127.0.0.1:6881", "127.0.0.1:6881"),
        ("[::1]:51413", "[::1]:51413"),
        ("[2001:DB8:0:0:1:0:0:1]:1", "[2001:db8::1:0:0:1]:1"),
        ("[2001:db8:0:0:0:0:2:1]:80", "[2001:db8::2:1]:80"),
        ("[::ffff:192.0.2.1]:65535", "[::ffff:c000:201]:65535"),
        ("[1:2:3:4:5:6:7:8]:9", "[1:2:3:4:5:6:7:8]:9"),
        ("[::]:9", "[::]:9"),
        ("[1::]:9", "[1::]:9"),
    ])
    func parsesAndPrints(input: String, printed: String) throws {
        let address = try #require(PeerAddress(input))
        #expect(address.description == printed)
        #expect(PeerAddress(printed) == address)
        #expect(PeerAddress(compact: address.compact) == address)
    }

    @Test(arguments: [
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
        "256.0.0.1:80", "1.2.3:80", "1.2.3.4.5:80", "01.2.3.4:80", "a.b.c.d:80", "localhost:80",
        "::1:80", "[::1]", "[::1]80", "[::1:80", "[1:2:3:4:5:6:7:8:9]:1", "[1::2::3]:1", "[12345::]:1",
        "[fe80::1%eth0]:1", "[:::]:1", "[1:2:3:4:5:6:7]:1", "[::1.2.3]:1", " 1.2.3.4:80",
    ])
    func refusesMalformed(input: String) {
        #expect(PeerAddress(input) == nil)
    }

    @Test func readsCompactForms() throws {
        let v4 = try #require(PeerAddress(compact: [10, 0, 0, 1, 0x1A, 0xE1]))
        #expect(v4.description == "10.0.0.1:6881")
        #expect(PeerAddress(compact: [1, 2, 3]) == nil)
        let v6 = try #require(PeerAddress(compact: [UInt8](repeating: 0, count: 15) + [1, 0x1A, 0xE1]))
        #expect(v6.description == "[::1]:6881")
    }

    @Test func ordersIPv4First() throws {
        let list = ["[::1]:1", "2.0.0.1:1", "1.0.0.1:2", "1.0.0.1:1"].compactMap(PeerAddress.init)
        #expect(list.sorted().map(\.description) == ["1.0.0.1:1", "1.0.0.1:2", "2.0.0.1:1", "[::1]:1"])
    }
}
