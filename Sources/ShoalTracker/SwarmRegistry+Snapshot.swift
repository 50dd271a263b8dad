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
        var output = Self.snapshotMagic
        output.reserveCapacity(16 + swarms.count * 40 + peerCount * 12)
        output.appendBigEndian(Self.snapshotVersion)
        output.appendBigEndian(UInt32(swarms.count))
        for swarm in swarms {
            swarm.infoHash.append(to: &output)
            output.appendBigEndian(UInt64(max(swarm.completed, 0)))
            output.appendBigEndian(UInt32(swarm.v4.count))
            output.appendBigEndian(UInt32(swarm.v6.count))
            for record in swarm.v4.records { Self.append(record, time: time, to: &output) }
            for record in swarm.v6.records { Self.append(record, time: time, to: &output) }
        }
        return output
    }

    private static func append<Address: RegistryAddress>(_ record: PeerRecord<Address>, time: UInt32, to output: inout [UInt8]) {
        var entry: [UInt8] = []
        record.address.appendCompact(port: record.port, to: &entry)
        output += entry
        output.append(record.flags & (PeerRecord<Address>.seeder | PeerRecord<Address>.counted))
        output.appendBigEndian(record.expires > time ? record.expires - time : 0)
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
            let key = self.key
            for _ in 0..<count4 {
                let host = IPv4Host(value: buffer.loadBigEndian(UInt32.self, at: offset))
                let record = Self.record(host, buffer, at: offset + 4, time: time, timeout: timeout)
                offset += 11
                guard record.port != 0, peerCount < configuration.maxPeers, swarms[position].v4.find(host, port: record.port, key: key) == nil else { continue }
                swarms[position].v4.insert(record, key: key)
                peerCount += 1
            }
            for _ in 0..<count6 {
                let host = IPv6Host(high: buffer.loadBigEndian(UInt64.self, at: offset), low: buffer.loadBigEndian(UInt64.self, at: offset + 8))
                let record = Self.record(host, buffer, at: offset + 16, time: time, timeout: timeout)
                offset += 23
                guard record.port != 0, peerCount < configuration.maxPeers, swarms[position].v6.find(host, port: record.port, key: key) == nil else { continue }
                swarms[position].v6.insert(record, key: key)
                peerCount += 1
            }
            if swarms[position].peerCount > 0 { swarms[position].emptySince = nil }
        }
        guard offset == buffer.count else {
            throw TrackerError(.invalidSnapshot("\(buffer.count - offset) bytes after the last swarm"), at: offset)
        }
    }

    private static func record<Address: RegistryAddress>(
        _ address: Address, _ buffer: UnsafeRawBufferPointer, at offset: Int, time: UInt32, timeout: UInt32
    ) -> PeerRecord<Address> {
        let port = buffer.loadBigEndian(UInt16.self, at: offset)
        let flags = buffer[offset + 2] & (PeerRecord<Address>.seeder | PeerRecord<Address>.counted)
        let left = min(buffer.loadBigEndian(UInt32.self, at: offset + 3), timeout)
        return PeerRecord(address: address, expires: time &+ left, port: port, flags: flags)
    }
}
