/// The address part of a stored peer: an IPv4 or an IPv6 host.
protocol RegistryAddress: Hashable, Sendable {
    /// Bytes of a compact entry (BEP 23: 6; BEP 7: 18).
    static var compactSize: Int { get }
    /// Appends the compact entry: address, then port, big-endian.
    func appendCompact(port: UInt16, to output: inout [UInt8])
    /// Writes the compact entry at `offset` of `output` (which has room for it).
    func storeCompact(port: UInt16, into output: UnsafeMutableRawBufferPointer, at offset: Int)
    /// Two words for keyed hashing.
    var words: (UInt64, UInt64) { get }
}

struct IPv4Host: RegistryAddress {
    var value: UInt32
    static var compactSize: Int { 6 }
    @inline(__always)
    func appendCompact(port: UInt16, to output: inout [UInt8]) {
        output.appendBigEndian(value)
        output.appendBigEndian(port)
    }
    @inline(__always)
    func storeCompact(port: UInt16, into output: UnsafeMutableRawBufferPointer, at offset: Int) {
        output.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
        output.storeBytes(of: port.bigEndian, toByteOffset: offset + 4, as: UInt16.self)
    }
    var words: (UInt64, UInt64) { (UInt64(value), 4) }
}

struct IPv6Host: RegistryAddress {
    var high: UInt64
    var low: UInt64
    static var compactSize: Int { 18 }
    @inline(__always)
    func appendCompact(port: UInt16, to output: inout [UInt8]) {
        output.appendBigEndian(high)
        output.appendBigEndian(low)
        output.appendBigEndian(port)
    }
    @inline(__always)
    func storeCompact(port: UInt16, into output: UnsafeMutableRawBufferPointer, at offset: Int) {
        output.storeBytes(of: high.bigEndian, toByteOffset: offset, as: UInt64.self)
        output.storeBytes(of: low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
        output.storeBytes(of: port.bigEndian, toByteOffset: offset + 16, as: UInt16.self)
    }
    var words: (UInt64, UInt64) { (high, low) }
}

/// One stored peer: 12 bytes for IPv4 (address, expiry, port, flags), 24 for IPv6.
struct PeerRecord<Address: RegistryAddress>: Sendable {
    var address: Address
    /// Registry seconds after which the peer is gone unless it announces again.
    var expires: UInt32
    var port: UInt16
    var flags: UInt8

    static var seeder: UInt8 { 1 }
    /// Its `completed` was counted (a repeated one is not counted again).
    static var counted: UInt8 { 2 }

    var isSeeder: Bool { flags & Self.seeder != 0 }
}

/// The peers of one address family of one swarm, for millions of peers across the registry: fixed-size
/// records in one contiguous array (no object per peer), removed by swapping the last one into the
/// hole, and, past a few peers, an open-addressing index of 4-byte slots (linear probing, backward-shift
/// deletion, no tombstones) from (address, port) to the record. The index hashes with the registry's
/// secret key (SipHash), so that no one can aim peers at one run of slots. Small swarms, the most
/// common, have no index at all and are scanned.
struct PeerStore<Address: RegistryAddress>: Sendable {
    typealias Record = PeerRecord<Address>

    private(set) var records: ContiguousArray<Record> = []
    /// Record position + 1; 0 is empty. Empty while the store is small.
    private var slots: ContiguousArray<UInt32> = []
    private(set) var seeders = 0

    /// Stores up to this many peers are scanned instead of indexed: 32 records are 6 cache lines read in
    /// order, and an index for them would cost more memory than they do.
    static var scanLimit: Int { 32 }

    var count: Int { records.count }
    var leechers: Int { records.count - seeders }

    /// Bytes held, for the registry's memory report.
    var bytesAllocated: Int {
        records.capacity * MemoryLayout<Record>.stride + slots.capacity * MemoryLayout<UInt32>.stride
    }

    @inline(__always)
    private static func hash(_ address: Address, _ port: UInt16, _ key: (UInt64, UInt64)) -> Int {
        let (a, b) = address.words
        return Int(truncatingIfNeeded: SipHasher.hash(key0: key.0, key1: key.1, a, b, UInt64(port)))
    }

    /// The position of the peer at `address`:`port`.
    func find(_ address: Address, port: UInt16, key: (UInt64, UInt64)) -> Int? {
        if slots.isEmpty {
            return records.firstIndex { $0.address == address && $0.port == port }
        }
        let mask = slots.count - 1
        var slot = Self.hash(address, port, key) & mask
        while true {
            let value = slots[slot]
            if value == 0 { return nil }
            let position = Int(value - 1)
            if records[position].address == address && records[position].port == port { return position }
            slot = (slot + 1) & mask
        }
    }

    /// Adds a peer that is not stored yet; returns its position.
    @discardableResult
    mutating func insert(_ record: Record, key: (UInt64, UInt64)) -> Int {
        let position = records.count
        records.append(record)
        if record.isSeeder { seeders += 1 }
        if slots.isEmpty {
            if records.count > Self.scanLimit { rebuildIndex(key: key) }
        } else if records.count * 4 > slots.count * 3 {
            rebuildIndex(key: key)
        } else {
            place(position, key: key)
        }
        return position
    }

    /// Changes a stored peer's expiry and seeder flag (and the count of seeders with it).
    @inline(__always)
    mutating func update(at position: Int, expires: UInt32, seeder: Bool, counted: Bool) {
        let was = records[position].isSeeder
        records[position].expires = expires
        var flags = records[position].flags & ~Record.seeder
        if seeder { flags |= Record.seeder }
        if counted { flags |= Record.counted }
        records[position].flags = flags
        if was != seeder { seeders += seeder ? 1 : -1 }
    }

    /// Removes the peer at `position`; the last record moves into its place.
    mutating func remove(at position: Int, key: (UInt64, UInt64)) {
        if records[position].isSeeder { seeders -= 1 }
        if !slots.isEmpty {
            unindex(position, key: key)
            let last = records.count - 1
            if position != last { reindex(from: last, to: position, key: key) }
        }
        let last = records.count - 1
        if position != last { records[position] = records[last] }
        records.removeLast()
        if !slots.isEmpty && (records.count <= Self.scanLimit / 2 || records.count * 8 < slots.count) {
            rebuildIndex(key: key)
        }
    }

    /// Removes every peer whose expiry is before `now`; returns how many.
    mutating func removeExpired(before now: UInt32, key: (UInt64, UInt64)) -> Int {
        var removed = 0
        var position = records.count - 1
        while position >= 0 {
            if records[position].expires < now {
                remove(at: position, key: key)
                removed += 1
            }
            position -= 1
        }
        if records.capacity > 32 && records.count * 4 < records.capacity {
            // Give memory back after a swarm shrank (an array never shrinks by itself).
            var smaller = ContiguousArray<Record>()
            smaller.reserveCapacity(records.count * 2)
            smaller.append(contentsOf: records)
            records = smaller
        }
        return removed
    }

    /// Calls `body` with up to `want` peers chosen at random, never the one at `excluding`, and (for a
    /// seed asking) no seeders, each at most once. The choice reads runs of consecutive records from a random
    /// start: up to four runs spaced evenly around the store (a quarter of the store apart, so they never
    /// overlap), or one run when the store is too small for four. Reading records in order costs a few
    /// cache lines where picking each peer at random cost a cache miss per peer (half the server's time in
    /// big swarms); the order of records is arrival order shuffled by every removal, so runs are as mixed
    /// as opentracker's (which copies one run from a random offset).
    func sample<Random: RandomNumberGenerator>(
        _ want: Int, excluding: Int?, seedersWanted: Bool, random: inout Random, _ body: (Record) -> Void
    ) {
        let count = records.count
        guard want > 0, count > 0 else { return }
        // The asker is left out once: when it is a seed and seeds are left out, it is already among them.
        let askerCounted = excluding.map { seedersWanted || !records[$0].isSeeder } ?? false
        let available = count - (askerCounted ? 1 : 0) - (seedersWanted ? 0 : seeders)
        guard available > 0 else { return }
        guard available > want else {
            for position in 0..<count where position != excluding && (seedersWanted || !records[position].isSeeder) {
                body(records[position])
            }
            return
        }
        let start = Int(random.next() % UInt64(count))
        let share = (want + 3) / 4
        let runs = share <= count / 4 ? 4 : 1
        let spacing = count / runs
        // A seed asking in a swarm of seeders must not make us scan it all.
        var stepsLeft = seedersWanted ? count : min(count, 8 * want + 64)
        var given = 0
        /// Walks positions `from..<to` of run `run` (offsets in its segment; the tail after the runs when
        /// `run == runs`) until `quota` peers in all were given; returns where it stopped.
        func walk(_ run: Int, from: Int, to: Int, quota: Int) -> Int {
            var offset = from
            var position = start + run * spacing + offset
            if position >= count { position -= count }
            while offset < to && given < quota && stepsLeft > 0 {
                let record = records[position]
                if position != excluding && (seedersWanted || !record.isSeeder) {
                    body(record)
                    given += 1
                }
                stepsLeft -= 1
                offset += 1
                position += 1
                if position == count { position = 0 }
            }
            return offset
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: runs) { stops in
            // First a share from each run, then what they still hold, then the few positions after them.
            for run in 0..<runs { stops[run] = walk(run, from: 0, to: spacing, quota: min(share * (run + 1), want)) }
            for run in 0..<runs where given < want { stops[run] = walk(run, from: stops[run], to: spacing, quota: want) }
            if given < want { _ = walk(runs, from: 0, to: count - runs * spacing, quota: want) }
        }
    }

    // MARK: - The index

    private mutating func rebuildIndex(key: (UInt64, UInt64)) {
        guard records.count > Self.scanLimit / 2 else {
            slots = []
            return
        }
        var capacity = 32
        while capacity * 3 < records.count * 4 { capacity *= 2 }  // load at most 3/4; growing doubles it
        slots = ContiguousArray(repeating: 0, count: capacity)
        for position in records.indices { place(position, key: key) }
    }

    private mutating func place(_ position: Int, key: (UInt64, UInt64)) {
        let mask = slots.count - 1
        var slot = Self.hash(records[position].address, records[position].port, key) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = UInt32(position + 1)
    }

    /// The slot holding `position`.
    private func slot(of position: Int, key: (UInt64, UInt64)) -> Int {
        let mask = slots.count - 1
        var slot = Self.hash(records[position].address, records[position].port, key) & mask
        while slots[slot] != UInt32(position + 1) { slot = (slot + 1) & mask }
        return slot
    }

    /// Empties `position`'s slot, shifting later members of its probe run back (Knuth's algorithm R).
    private mutating func unindex(_ position: Int, key: (UInt64, UInt64)) {
        let mask = slots.count - 1
        var hole = slot(of: position, key: key)
        var next = (hole + 1) & mask
        while slots[next] != 0 {
            let moved = Int(slots[next] - 1)
            let home = Self.hash(records[moved].address, records[moved].port, key) & mask
            // Move it back when its home is not cyclically within (hole, next].
            let distanceToNext = (next - home) & mask
            let distanceToHole = (next - hole) & mask
            if distanceToNext >= distanceToHole {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
    }

    /// The record at `from` is about to move to `to`: its slot follows.
    private mutating func reindex(from: Int, to: Int, key: (UInt64, UInt64)) {
        slots[slot(of: from, key: key)] = UInt32(to + 1)
    }
}
