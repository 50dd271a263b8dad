import ShoalCore
import ShoalSwarm

extension FuzzChecks {
    /// BEP 14 announces: a datagram is refused with a typed error or read as an announce whose encoding
    /// reads back as the same announce (host, port, info-hashes, cookie), within the limits. The datagram
    /// then goes to a discovery core, which may only name peers of its own torrent at the announced port.
    public static func localDiscovery(_ bytes: [UInt8]) {
        if let announce = try? LocalDiscoveryAnnouncement(parsing: bytes) {
            precondition(bytes.count <= LocalDiscoveryAnnouncement.maxLength, "an over-long datagram was read")
            precondition(!announce.infoHashes.isEmpty && announce.infoHashes.count <= LocalDiscoveryAnnouncement.maxInfoHashes)
            precondition(announce.port > 0)
            if !announce.host.contains(where: { $0 == "\r" || $0 == "\n" }),
                !(announce.cookie?.contains(where: { $0 == "\r" || $0 == "\n" }) ?? false)
            {
                guard let again = try? LocalDiscoveryAnnouncement(parsing: announce.encoded) else {
                    fatalError("an announce re-encoded to a datagram that does not parse")
                }
                precondition(again.port == announce.port && again.infoHashes == announce.infoHashes)
                precondition(again.cookie == announce.cookie.map { $0.trimmingWhitespace } && again.host == announce.host.trimmingWhitespace)
            }
        }
        let ours = Digest20(bytes: Array(repeating: 0, count: 20))!
        var core = LocalDiscovery(configuration: .init(cookie: "fuzz"))
        _ = core.add(ours, port: 6881, now: .zero)
        let sender = PeerAddress("10.0.0.1:6771")!.host
        for action in core.received(bytes, from: sender, now: .zero + .seconds(1)) {
            guard case .found(let hash, let peer) = action else { fatalError("a datagram made the core send") }
            precondition(hash == ours && peer.host == sender && peer.port > 0)
        }
    }
}

extension String {
    /// Without spaces and tabs at either end (as header values are read).
    fileprivate var trimmingWhitespace: String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
