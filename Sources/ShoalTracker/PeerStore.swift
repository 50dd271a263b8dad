/// The address part of a stored peer: an IPv4 or an IPv6 host, and how (address, port) is kept in a
/// record: as a sort key that is a keyed bijection of it (so records sorted by key are in an order no one
/// can predict, and the key turns back into the peer).
protocol RegistryAddress: Hashable, Sendable {
    associatedtype Key: Comparable & Sendable
    /// Bytes of a compact entry (BEP 23: 6; BEP 7: 18), also the bytes of a stored key.
    static var compactSize: Int { get }
    /// The sort key of (`address`, `port`) under `secret`.
    static func key(_ address: Self, port: UInt16, secret: (UInt64, UInt64)) -> Key
    /// The (address, port) a key stands for.
    static func peer(_ key: Key, secret: (UInt64, UInt64)) -> (address: Self, port: UInt16)
    /// A stored key, big-endian at `pointer` (so byte order is key order).
    static func load(_ pointer: UnsafeRawPointer) -> Key
    static func store(_ key: Key, _ pointer: UnsafeMutableRawPointer)
    /// The key's most significant 64 bits, which choose its bucket.
    static func top(_ key: Key) -> UInt64
    /// Writes the compact entry: address, then port, big-endian.
    func storeCompact(port: UInt16, into output: UnsafeMutableRawPointer)
    /// Two words for keyed hashing.
    var words: (UInt64, UInt64) { get }
}

struct IPv4Host: RegistryAddress {
    var value: UInt32
    static var compactSize: Int { 6 }
    static let mask: UInt64 = 0xFFFF_FFFF_FFFF

    /// (address, port) as 48 bits, xored with the secret, multiplied by odd constants and xor-shifted by
    /// half its width: each step is invertible modulo 2⁴⁸.
    @inline(__always)
    static func key(_ address: IPv4Host, port: UInt16, secret: (UInt64, UInt64)) -> UInt64 {
        var x = (UInt64(address.value) << 16 | UInt64(port)) ^ (secret.0 & mask)
        x = (x &* 0x9E37_79B9_7F4A_7C15) & mask
        x ^= x >> 24
        x = (x &* 0xBF58_476D_1CE4_E5B9) & mask
        x ^= x >> 24
        return x
    }
    @inline(__always)
    static func peer(_ key: UInt64, secret: (UInt64, UInt64)) -> (address: IPv4Host, port: UInt16) {
        var x = key ^ (key >> 24)
        x = (x &* 0x96DE_1B17_3F11_9089) & mask
        x ^= x >> 24
        x = ((x &* 0xF1DE_83E1_9937_733D) & mask) ^ (secret.0 & mask)
        return (IPv4Host(value: UInt32(truncatingIfNeeded: x >> 16)), UInt16(truncatingIfNeeded: x))
    }
    @inline(__always)
    static func load(_ pointer: UnsafeRawPointer) -> UInt64 {
        UInt64(UInt32(bigEndian: pointer.loadUnaligned(as: UInt32.self))) << 16
            | UInt64(UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
    }
    @inline(__always)
    static func store(_ key: UInt64, _ pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: UInt32(truncatingIfNeeded: key >> 16).bigEndian, as: UInt32.self)
        pointer.storeBytes(of: UInt16(truncatingIfNeeded: key).bigEndian, toByteOffset: 4, as: UInt16.self)
    }
    @inline(__always)
    static func top(_ key: UInt64) -> UInt64 { key << 16 }
    @inline(__always)
    func storeCompact(port: UInt16, into output: UnsafeMutableRawPointer) {
        output.storeBytes(of: value.bigEndian, as: UInt32.self)
        output.storeBytes(of: port.bigEndian, toByteOffset: 4, as: UInt16.self)
    }
    var words: (UInt64, UInt64) { (UInt64(value), 4) }
}

struct IPv6Host: RegistryAddress {
    var high: UInt64
    var low: UInt64
    static var compactSize: Int { 18 }

    struct Key: Comparable, Sendable {
        var high: UInt64
        var low: UInt64
        var port: UInt16
        static func < (a: Key, b: Key) -> Bool {
            a.high != b.high ? a.high < b.high : a.low != b.low ? a.low < b.low : a.port < b.port
        }
    }

    /// A bijection of 64 bits: odd multipliers and xor-shifts by half the width.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var x = value &* 0x94D0_49BB_1331_11EB
        x ^= x >> 32
        x = x &* 0x2545_F491_4F6C_DD1D
        return x ^ x >> 32
    }
    @inline(__always)
    static func unmix(_ value: UInt64) -> UInt64 {
        var x = value ^ value >> 32
        x = x &* 0x5907_1D96_D81E_CD35
        x ^= x >> 32
        return x &* 0x3196_42B2_D24D_8EC3
    }
    @inline(__always)
    static func key(_ address: IPv6Host, port: UInt16, secret: (UInt64, UInt64)) -> Key {
        let high = mix(address.high ^ secret.0)
        return Key(high: high, low: mix(address.low ^ secret.1 ^ high), port: port)
    }
    @inline(__always)
    static func peer(_ key: Key, secret: (UInt64, UInt64)) -> (address: IPv6Host, port: UInt16) {
        (IPv6Host(high: unmix(key.high) ^ secret.0, low: unmix(key.low) ^ secret.1 ^ key.high), key.port)
    }
    @inline(__always)
    static func load(_ pointer: UnsafeRawPointer) -> Key {
        Key(
            high: UInt64(bigEndian: pointer.loadUnaligned(as: UInt64.self)),
            low: UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            port: UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt16.self)))
    }
    @inline(__always)
    static func store(_ key: Key, _ pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: key.high.bigEndian, as: UInt64.self)
        pointer.storeBytes(of: key.low.bigEndian, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: key.port.bigEndian, toByteOffset: 16, as: UInt16.self)
    }
    @inline(__always)
    static func top(_ key: Key) -> UInt64 { key.high }
    @inline(__always)
    func storeCompact(port: UInt16, into output: UnsafeMutableRawPointer) {
        output.storeBytes(of: high.bigEndian, as: UInt64.self)
        output.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        output.storeBytes(of: port.bigEndian, toByteOffset: 16, as: UInt16.self)
    }
    var words: (UInt64, UInt64) { (high, low) }
}

/// A stored peer's byte after its key: whether it seeds, whether its `completed` was counted, and the
/// epoch (modulo 64) after which it expires.
struct PeerFlags: Hashable, Sendable {
    var rawValue: UInt8

    static let seederBit: UInt8 = 0x80
    static let countedBit: UInt8 = 0x40
    static let epochMask: UInt8 = 0x3F

    init(rawValue: UInt8) { self.rawValue = rawValue }
    init(seeder: Bool, counted: Bool, expires epoch: UInt32) {
        rawValue = (seeder ? Self.seederBit : 0) | (counted ? Self.countedBit : 0) | UInt8(truncatingIfNeeded: epoch) & Self.epochMask
    }

    var isSeeder: Bool { rawValue & Self.seederBit != 0 }
    var isCounted: Bool { rawValue & Self.countedBit != 0 }

    /// Epochs from `now` until it expires (0: this epoch is its last); negative once expired. Epochs are
    /// kept modulo 64, so this is right while a peer is at most 31 epochs to either side of `now`
    /// (``PeerStore/epochsAhead`` ahead when stored; the sweep removes it long before 31 behind).
    @inline(__always)
    func epochsLeft(now: UInt32) -> Int {
        let difference = Int((rawValue &- UInt8(truncatingIfNeeded: now)) & Self.epochMask)
        return difference >= 32 ? difference - 64 : difference
    }
}

/// A peer as the store hands it out.
struct StoredPeer<Address: RegistryAddress>: Sendable {
    var address: Address
    var port: UInt16
    var flags: PeerFlags
}

/// The peers of one address family of one swarm, for millions of peers across the registry, in as few
/// bytes as possible: a peer is its key (a keyed bijection of address and port: 6 bytes for IPv4, 18 for
/// IPv6) and one byte of flags and expiry epoch — 7 and 19 bytes, no index, no object, no padding.
/// Records are kept sorted by key in byte arrays that grow by an eighth (not doubled); a peer is found by
/// binary search. Past ``maxBucketRecords`` peers in one array the store splits into 2ⁿ buckets by the
/// key's top bits, so an insertion moves at most a few KiB; because keys are keyed hashes, no one can
/// aim peers at one bucket (except one IPv6 host's own ports, whose keys share the address's half: their
/// bucket grows past the limit, see `insert`). Sorted by key, the records are in an order unrelated to addresses, arrival
/// or anything a client chooses, so any run of consecutive records is a random choice of peers.
struct PeerStore<Address: RegistryAddress>: Sendable {
    typealias Key = Address.Key

    /// One bucket's records while there is one bucket (most swarms); empty when there are more.
    private var single: ContiguousArray<UInt8> = []
    /// The buckets, 2ⁿ of them, when there are more than one.
    private var buckets: ContiguousArray<ContiguousArray<UInt8>> = []
    private(set) var count = 0
    private(set) var seeders = 0

    /// Bytes of a record: key and flags.
    static var recordSize: Int { Address.compactSize + 1 }
    /// A bucket splits past this many records (an insertion moves half of one on average).
    static var maxBucketRecords: Int { 512 }
    /// Buckets merge back while they hold fewer than this many records on average.
    static var minBucketRecords: Int { 128 }
    /// Epochs an announce keeps a peer for at most (the registry's epoch is an eighth of its peer timeout,
    /// rounded up, so at most 9 epochs ahead with the epoch it is in).
    static var epochsAhead: Int { 9 }

    var leechers: Int { count - seeders }
    var bucketCount: Int { buckets.isEmpty ? 1 : buckets.count }

    /// Bytes held, for the registry's memory report.
    var bytesAllocated: Int {
        single.capacity + buckets.capacity * MemoryLayout<ContiguousArray<UInt8>>.stride + buckets.reduce(0) { $0 + $1.capacity }
    }

    /// Where a key is or would be: its bucket and the record's index in it.
    struct Location: Hashable {
        var bucket: Int
        var index: Int
    }

    @inline(__always)
    private func bucket(of key: Key) -> Int {
        buckets.isEmpty ? 0 : Int(truncatingIfNeeded: Address.top(key) >> UInt64(64 - buckets.count.trailingZeroBitCount))
    }

    @inline(__always)
    private func withBucket<Result>(_ bucket: Int, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        buckets.isEmpty ? single.withUnsafeBytes(body) : buckets[bucket].withUnsafeBytes(body)
    }

    @inline(__always)
    private mutating func withMutableBucket<Result>(_ bucket: Int, _ body: (inout ContiguousArray<UInt8>) -> Result) -> Result {
        buckets.isEmpty ? body(&single) : body(&buckets[bucket])
    }

    /// The location of `key`, and whether a record with it is there (else: where it would go).
    ///
    /// Keys are keyed hashes, spread evenly over their bucket's range, so a key's place in that range
    /// predicts its index within about √n records: two probes around the guess narrow the search to those
    /// few cache lines, where a plain binary search over a bucket of a few KiB touches a cache line per
    /// probe. A guess that misses (a run of close keys, which no client can aim at) only costs the probes
    /// a binary search over the rest would take.
    func find(_ key: Key) -> (location: Location, found: Bool) {
        let bucket = bucket(of: key)
        let size = Self.recordSize
        let bucketBits = buckets.isEmpty ? 0 : buckets.count.trailingZeroBitCount
        return withBucket(bucket) { bytes in
            // Invariant: records below `low` are less than `key`, records from `high` on are not.
            var low = 0
            var high = bytes.count / size
            if high > 16 {
                let count = high
                let position = Address.top(key) << UInt64(bucketBits)
                let guess = Int(truncatingIfNeeded: position.multipliedFullWidth(by: UInt64(count)).high)
                let window = 1 << ((count.bitWidth - count.leadingZeroBitCount + 1) / 2)
                let first = max(guess - window, 0)
                let last = min(guess + window, count - 1)
                if Address.load(bytes.baseAddress! + first * size) < key { low = first + 1 } else { high = first }
                if low > first, last > first {
                    if Address.load(bytes.baseAddress! + last * size) < key { low = last + 1 } else { high = last }
                }
            }
            while low < high {
                let middle = (low + high) >> 1
                let other = Address.load(bytes.baseAddress! + middle * size)
                if other < key {
                    low = middle + 1
                } else if key < other {
                    high = middle
                } else {
                    return (Location(bucket: bucket, index: middle), true)
                }
            }
            // The probes around the guess may have stopped on the key itself (`high` set to it).
            let found = low < bytes.count / size && Address.load(bytes.baseAddress! + low * size) == key
            return (Location(bucket: bucket, index: low), found)
        }
    }

    /// The flags of the record at `location`.
    func flags(at location: Location) -> PeerFlags {
        withBucket(location.bucket) { PeerFlags(rawValue: $0[location.index * Self.recordSize + Address.compactSize]) }
    }

    /// Adds `key` at `location` (from ``find(_:)``, not found); returns where it is now.
    @discardableResult
    mutating func insert(_ key: Key, flags: PeerFlags, at location: Location) -> Location {
        let size = Self.recordSize
        withMutableBucket(location.bucket) { bytes in
            if bytes.count + size > bytes.capacity {
                // Grow by an eighth (at least four records): doubling would leave a third of memory unused on average.
                bytes.reserveCapacity(bytes.count + max(bytes.count / 8, 4 * size) / size * size)
            }
            let tail = bytes.count - location.index * size
            bytes.append(contentsOf: repeatElement(0, count: size))
            bytes.withUnsafeMutableBytes { buffer in
                let at = buffer.baseAddress! + location.index * size
                if tail > 0 { (at + size).copyMemory(from: at, byteCount: tail) }
                Address.store(key, at)
                at.storeBytes(of: flags.rawValue, toByteOffset: Address.compactSize, as: UInt8.self)
            }
        }
        count += 1
        if flags.isSeeder { seeders += 1 }
        // Split only while the doubled buckets would still average `minBucketRecords` (else the next removal
        // merges them back): keys that share their top bits (one IPv6 host's ports, whose keys share the
        // address's half) stay in one bucket whatever the split, and splitting again at each of their inserts
        // doubled every bucket each time, without end. Such a bucket grows past the limit instead.
        if withBucket(location.bucket, { $0.count }) > Self.maxBucketRecords * size,
            count >= bucketCount * 2 * Self.minBucketRecords
        {
            split()
            return find(key).location
        }
        return location
    }

    /// Changes the flags (seeder, counted, expiry) of the record at `location`.
    @inline(__always)
    mutating func update(at location: Location, flags: PeerFlags) {
        let offset = location.index * Self.recordSize + Address.compactSize
        let was = withMutableBucket(location.bucket) { bytes in
            let was = PeerFlags(rawValue: bytes[offset])
            bytes[offset] = flags.rawValue
            return was
        }
        if was.isSeeder != flags.isSeeder { seeders += flags.isSeeder ? 1 : -1 }
    }

    /// Removes the record at `location`.
    mutating func remove(at location: Location) {
        let size = Self.recordSize
        let flags = flags(at: location)
        withMutableBucket(location.bucket) { bytes in
            bytes.removeSubrange((location.index * size)..<((location.index + 1) * size))
        }
        count -= 1
        if flags.isSeeder { seeders -= 1 }
        if buckets.count > 1 && count < buckets.count * Self.minBucketRecords { merge() }
    }

    /// Removes every peer that expired before epoch `now`; returns how many.
    mutating func removeExpired(now: UInt32) -> Int {
        let size = Self.recordSize
        var removed = 0
        var removedSeeders = 0
        for bucket in 0..<bucketCount {
            withMutableBucket(bucket) { bytes in
                var kept = 0
                let total = bytes.count / size
                bytes.withUnsafeMutableBytes { buffer in
                    let base = buffer.baseAddress!
                    for index in 0..<total {
                        let flags = PeerFlags(rawValue: base.load(fromByteOffset: index * size + Address.compactSize, as: UInt8.self))
                        if flags.epochsLeft(now: now) < 0 {
                            removed += 1
                            if flags.isSeeder { removedSeeders += 1 }
                            continue
                        }
                        if kept != index { (base + kept * size).copyMemory(from: base + index * size, byteCount: size) }
                        kept += 1
                    }
                }
                guard kept < total else { return }
                bytes.removeLast((total - kept) * size)
                if bytes.capacity > 64 * size && bytes.count * 4 < bytes.capacity * 3 {
                    // Give memory back after the swarm shrank (an array never shrinks by itself).
                    var smaller = ContiguousArray<UInt8>()
                    smaller.reserveCapacity(bytes.count + bytes.count / 8)
                    smaller.append(contentsOf: bytes)
                    bytes = smaller
                }
            }
        }
        count -= removed
        seeders -= removedSeeders
        if buckets.count > 1 && count < buckets.count * Self.minBucketRecords { merge() }
        return removed
    }

    /// Calls `body` with every stored peer.
    func forEach(secret: (UInt64, UInt64), _ body: (StoredPeer<Address>) -> Void) {
        let size = Self.recordSize
        for bucket in 0..<bucketCount {
            withBucket(bucket) { bytes in
                for offset in stride(from: 0, to: bytes.count, by: size) {
                    let (address, port) = Address.peer(Address.load(bytes.baseAddress! + offset), secret: secret)
                    body(StoredPeer(address: address, port: port, flags: PeerFlags(rawValue: bytes[offset + Address.compactSize])))
                }
            }
        }
    }

    /// Writes up to `want` peers' compact entries (BEP 23, BEP 7) at `output`, never `excluding`'s and
    /// (when `seedersWanted` is false, for a seed asking) no seeders, each at most once; returns how
    /// many. They are one run of consecutive records from a random start (wrapping around): records are in
    /// keyed-hash order, so a run is as random a choice as any (opentracker also copies one run), and it
    /// reads a few cache lines in order where picking each peer at random costs a cache miss per peer. A
    /// seed asking in a swarm of seeds does not make the walk go through all of it.
    func sample<Random: RandomNumberGenerator>(
        _ want: Int, excluding: Key?, seedersWanted: Bool, secret: (UInt64, UInt64), random: inout Random,
        into output: UnsafeMutableRawPointer
    ) -> Int {
        guard want > 0, count > 0 else { return 0 }
        let size = Self.recordSize
        let entry = Address.compactSize
        let total = bucketCount
        var bucket = total == 1 ? 0 : Int(random.next() % UInt64(total))
        var index = 0
        let startBucketCount = withBucket(bucket) { $0.count / size }
        if startBucketCount > 0 { index = Int(random.next() % UInt64(startBucketCount)) }
        let available = count - (seedersWanted ? 0 : seeders)
        var stepsLeft = seedersWanted || available <= want ? count : min(count, 8 * want + 64)
        var given = 0
        while given < want && stepsLeft > 0 {
            withBucket(bucket) { bytes in
                let records = bytes.count / size
                while index < records && given < want && stepsLeft > 0 {
                    let record = bytes.baseAddress! + index * size
                    index += 1
                    stepsLeft -= 1
                    let flags = PeerFlags(rawValue: record.load(fromByteOffset: entry, as: UInt8.self))
                    if !seedersWanted && flags.isSeeder { continue }
                    let key = Address.load(record)
                    if let excluding, key == excluding { continue }
                    let (address, port) = Address.peer(key, secret: secret)
                    address.storeCompact(port: port, into: output + given * entry)
                    given += 1
                }
            }
            index = 0
            bucket += 1
            if bucket == total { bucket = 0 }
        }
        return given
    }

    // MARK: - Buckets

    /// Doubles the buckets: each splits at the key bit below those that chose it.
    private mutating func split() {
        let size = Self.recordSize
        let old = buckets.isEmpty ? [single] : buckets
        let shift = UInt64(63 - (old.count.trailingZeroBitCount))
        var next = ContiguousArray<ContiguousArray<UInt8>>()
        next.reserveCapacity(old.count * 2)
        for bytes in old {
            let records = bytes.count / size
            let cut = bytes.withUnsafeBytes { buffer in
                var low = 0
                var high = records
                while low < high {
                    let middle = (low + high) >> 1
                    if Address.top(Address.load(buffer.baseAddress! + middle * size)) >> shift & 1 == 0 {
                        low = middle + 1
                    } else {
                        high = middle
                    }
                }
                return low
            }
            for range in [0..<(cut * size), (cut * size)..<bytes.count] {
                var part = ContiguousArray<UInt8>()
                part.reserveCapacity(range.count + range.count / 8)
                part.append(contentsOf: bytes[range])
                next.append(part)
            }
        }
        single = []
        buckets = next
    }

    /// Halves the buckets: neighbours join (their records stay in key order).
    private mutating func merge() {
        var next = ContiguousArray<ContiguousArray<UInt8>>()
        next.reserveCapacity(buckets.count / 2)
        for pair in stride(from: 0, to: buckets.count, by: 2) {
            var joined = ContiguousArray<UInt8>()
            let bytes = buckets[pair].count + buckets[pair + 1].count
            joined.reserveCapacity(bytes + bytes / 8)
            joined.append(contentsOf: buckets[pair])
            joined.append(contentsOf: buckets[pair + 1])
            next.append(joined)
        }
        if next.count == 1 {
            single = next[0]
            buckets = []
        } else {
            buckets = next
        }
    }
}
