import ShoalCore

/// The registry saved to a file and read back (`shoal tracker --state FILE`), so that a restart keeps
/// the swarms: their peers with the time each has left, their seeders and leechers, and their completed
/// counts.
///
/// Layout, all big-endian: `SHOALTRK`, version (u32, 1), swarm count (u32); per swarm its info-hash (20),
/// completed (u64), IPv4 and IPv6 peer counts (u32 each), then the peers: address (4 or 16), port (u16),
/// flags (u8), seconds left (u32).
extension SwarmRegistry {
    static let snapshotMagic = Array("SHOALTRK".utf8)
    static let snapshotVersion: UInt32 = 1

    /// The registry as bytes, with each peer's time left counted from `now`.
    public func snapshot(now: Instant) -> [UInt8] {
        let time = seconds(now)
        let current = epoch(time)
        var output = Self.snapshotMagic
        output.reserveCapacity(16 + swarms.count * 40 + peerCount * 12)
        output.appendBigEndian(Self.snapshotVersion)
        output.appendBigEndian(UInt32(swarms.count))
        for swarm in swarms {
            swarm.infoHash.append(to: &output)
            output.appendBigEndian(UInt64(max(swarm.completed, 0)))
            output.appendBigEndian(UInt32(swarm.v4.count))
            output.appendBigEndian(UInt32(swarm.v6.count))
            swarm.v4.forEach(secret: key) { append($0, time: time, epoch: current, to: &output) }
            swarm.v6.forEach(secret: key) { append($0, time: time, epoch: current, to: &output) }
        }
        return output
    }

    /// File flags: 1 seeds, 2 its `completed` was counted.
    private func append<Address: RegistryAddress>(_ peer: StoredPeer<Address>, time: UInt32, epoch: UInt32, to output: inout [UInt8]) {
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: Address.compactSize))
        output.withUnsafeMutableBytes { peer.address.storeCompact(port: peer.port, into: $0.baseAddress! + start) }
        output.append((peer.flags.isSeeder ? 1 : 0) | (peer.flags.isCounted ? 2 : 0))
        // Seconds until the end of the epoch it expires in (0: expired, not swept yet).
        let left = peer.flags.epochsLeft(now: epoch)
        output.appendBigEndian(left < 0 ? 0 : (epoch &+ UInt32(left) &+ 1) &* epochLength &- time)
    }

    /// A registry holding what `bytes` (a ``snapshot(now:)``) held, under `configuration`: peers not
    /// allowed by its allow-list are left out, times left are cut to its `peerTimeout`, peers past its
    /// limits are dropped, a peer given twice is kept once. Refuses a file that is not a snapshot, is
    /// truncated, or names a swarm twice.
    public init(restoring bytes: [UInt8], configuration: Configuration, now: Instant) throws(TrackerError) {
        self.init(configuration: configuration, now: now)
        var registry = self
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(TrackerError) in try registry.restore(buffer, now: now) }
        }
        try result.get()
        self = registry
    }

    private mutating func restore(_ buffer: UnsafeRawBufferPointer, now: Instant) throws(TrackerError) {
        func need(_ count: Int, at offset: Int, _ what: String) throws(TrackerError) {
            guard buffer.count - offset >= count else {
                throw TrackerError(.invalidSnapshot("truncated in \(what)"), at: offset)
            }
        }
        try need(16, at: 0, "the header")
        guard buffer.prefix(8).elementsEqual(Self.snapshotMagic) else {
            throw TrackerError(.invalidSnapshot("not a Shoal tracker state file"), at: 0)
        }
        let version = buffer.loadBigEndian(UInt32.self, at: 8)
        guard version == Self.snapshotVersion else {
            throw TrackerError(.invalidSnapshot("version \(version) is not \(Self.snapshotVersion)"), at: 8)
        }
        let swarmCount = Int(buffer.loadBigEndian(UInt32.self, at: 12))
        let time = seconds(now)
        let timeout = UInt32(clamping: configuration.peerTimeout)
        var offset = 16
        var seen: Set<Bytes20> = []
        for _ in 0..<swarmCount {
            try need(36, at: offset, "a swarm")
            let infoHash = Bytes20(buffer, at: offset)
            let completed = buffer.loadBigEndian(UInt64.self, at: offset + 20)
            let count4 = Int(buffer.loadBigEndian(UInt32.self, at: offset + 28))
            let count6 = Int(buffer.loadBigEndian(UInt32.self, at: offset + 32))
            guard seen.insert(infoHash).inserted else {
                throw TrackerError(.invalidSnapshot("swarm \(infoHash) appears twice"), at: offset)
            }
            offset += 36
            try need(count4 * 11, at: offset, "the IPv4 peers of \(infoHash)")
            try need(count4 * 11 + count6 * 23, at: offset, "the IPv6 peers of \(infoHash)")
            let allowed = configuration.allowList?.contains(infoHash) ?? true
            guard allowed, let position = swarmPosition(infoHash, create: true, time: time) else {
                offset += count4 * 11 + count6 * 23
                continue
            }
            swarms[position].completed = Int64(clamping: completed)
            for _ in 0..<count4 {
                let host = IPv4Host(value: buffer.loadBigEndian(UInt32.self, at: offset))
                if Self.restore(
                    host, buffer, at: offset + 4, into: &swarms[position].v4, time: time, timeout: timeout, epochLength: epochLength,
                    secret: key, canAdd: peerCount < configuration.maxPeers)
                {
                    peerCount += 1
                }
                offset += 11
            }
            for _ in 0..<count6 {
                let host = IPv6Host(high: buffer.loadBigEndian(UInt64.self, at: offset), low: buffer.loadBigEndian(UInt64.self, at: offset + 8))
                if Self.restore(
                    host, buffer, at: offset + 16, into: &swarms[position].v6, time: time, timeout: timeout, epochLength: epochLength,
                    secret: key, canAdd: peerCount < configuration.maxPeers)
                {
                    peerCount += 1
                }
                offset += 23
            }
            if swarms[position].peerCount > 0 { swarms[position].emptySince = nil }
        }
        guard offset == buffer.count else {
            throw TrackerError(.invalidSnapshot("\(buffer.count - offset) bytes after the last swarm"), at: offset)
        }
    }

    /// Adds the peer at `address` whose port, flags and seconds left are at `offset` (unless its port is 0,
    /// it has no time left, the registry is full, or it is there already); returns whether it was added.
    private static func restore<Address: RegistryAddress>(
        _ address: Address, _ buffer: UnsafeRawBufferPointer, at offset: Int, into store: inout PeerStore<Address>, time: UInt32,
        timeout: UInt32, epochLength: UInt32, secret: (UInt64, UInt64), canAdd: Bool
    ) -> Bool {
        let port = buffer.loadBigEndian(UInt16.self, at: offset)
        let flags = buffer[offset + 2]
        let left = min(buffer.loadBigEndian(UInt32.self, at: offset + 3), timeout)
        guard port != 0, left > 0, canAdd else { return false }
        let peer = Address.key(address, port: port, secret: secret)
        let (location, found) = store.find(peer)
        guard !found else { return false }
        let expires = (time &+ left &- 1) / epochLength
        store.insert(peer, flags: PeerFlags(seeder: flags & 1 != 0, counted: flags & 2 != 0, expires: expires), at: location)
        return true
    }
}
