import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("Peer store")
struct PeerStoreTests {
    let secret: (UInt64, UInt64) = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)

    struct PeerKey4: Hashable {
        var address: UInt32
        var port: UInt16
    }

    /// Random inserts, updates and removals, checked against a dictionary after every step, across the
    /// sizes where the store is one array, splits into buckets, and merges them again.
    @Test(arguments: [1, 2])
    func agreesWithADictionaryUnderRandomChanges(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var store = PeerStore<IPv4Host>()
        var model: [PeerKey4: PeerFlags] = [:]
        var mostBuckets = 1
        for step in 0..<40_000 {
            // Grow for a while, then shrink, so every regime is crossed.
            let growing = (step / 10_000) % 2 == 0
            let peer = PeerKey4(address: UInt32(random.next() % 4096), port: UInt16(1 + random.next() % 4))
            let key = IPv4Host.key(IPv4Host(value: peer.address), port: peer.port, secret: secret)
            let (location, found) = store.find(key)
            #expect(found == (model[peer] != nil))
            let flags = PeerFlags(seeder: random.next() % 2 == 0, counted: random.next() % 2 == 0, expires: UInt32(step))
            if found {
                #expect(store.flags(at: location) == model[peer])
                if growing && random.next() % 3 != 0 {
                    store.update(at: location, flags: flags)
                    model[peer] = flags
                } else {
                    store.remove(at: location)
                    model[peer] = nil
                }
            } else if growing || random.next() % 4 == 0 {
                store.insert(key, flags: flags, at: location)
                model[peer] = flags
            }
            mostBuckets = max(mostBuckets, store.bucketCount)
            if step % 1000 == 999 {
                #expect(store.count == model.count)
                #expect(store.seeders == model.values.filter(\.isSeeder).count)
            }
        }
        #expect(mostBuckets >= 4, "the store split into buckets")
        var seen: [PeerKey4: PeerFlags] = [:]
        store.forEach(secret: secret) { seen[PeerKey4(address: $0.address.value, port: $0.port)] = $0.flags }
        #expect(seen == model)
        // Emptied, it merges its buckets back into one.
        for peer in model.keys {
            let (location, found) = store.find(IPv4Host.key(IPv4Host(value: peer.address), port: peer.port, secret: secret))
            #expect(found)
            if found { store.remove(at: location) }
        }
        #expect(store.count == 0 && store.seeders == 0 && store.bucketCount == 1)
    }

    @Test func keysAreABijectionInAnOrderUnrelatedToAddresses() {
        var random = SeededGenerator(seed: 5)
        for _ in 0..<10_000 {
            let v4 = IPv4Host(value: UInt32(truncatingIfNeeded: random.next()))
            let port = UInt16(truncatingIfNeeded: random.next())
            let back4 = IPv4Host.peer(IPv4Host.key(v4, port: port, secret: secret), secret: secret)
            #expect(back4.address == v4 && back4.port == port)
            #expect(IPv4Host.key(v4, port: port, secret: secret) >> 48 == 0)
            let v6 = IPv6Host(high: random.next(), low: random.next())
            let back6 = IPv6Host.peer(IPv6Host.key(v6, port: port, secret: secret), secret: secret)
            #expect(back6.address == v6 && back6.port == port)
        }
        // Neighbouring addresses land far apart, and another secret orders them differently.
        let keys = (0..<64).map { IPv4Host.key(IPv4Host(value: 0x0A00_0000 + UInt32($0)), port: 6881, secret: secret) }
        let sorted = keys.indices.sorted { keys[$0] < keys[$1] }
        #expect(sorted != Array(keys.indices))
        let other = (0..<64).map { IPv4Host.key(IPv4Host(value: 0x0A00_0000 + UInt32($0)), port: 6881, secret: (1, 2)) }
        #expect(other.indices.sorted { other[$0] < other[$1] } != sorted)
    }

    @Test func expiresOnlyPeersPastTheirEpochAcrossTheWrap() {
        for now in [UInt32(40), 62, 1000] {
            var store = PeerStore<IPv6Host>()
            // Expiry epochs from 20 before `now` to 9 after it.
            for index in 0..<30 {
                let key = IPv6Host.key(IPv6Host(high: 1, low: UInt64(index)), port: 1, secret: secret)
                let location = store.find(key).location
                store.insert(key, flags: PeerFlags(seeder: index % 2 == 0, counted: false, expires: now - 20 + UInt32(index)), at: location)
            }
            #expect(store.removeExpired(now: now) == 20)
            #expect(store.count == 10 && store.seeders == 5)
            for index in 0..<30 {
                let found = store.find(IPv6Host.key(IPv6Host(high: 1, low: UInt64(index)), port: 1, secret: secret)).found
                #expect(found == (index >= 20))
            }
        }
    }

    func store(_ count: Int, seeder: (Int) -> Bool) -> PeerStore<IPv4Host> {
        var store = PeerStore<IPv4Host>()
        for index in 0..<count {
            let key = IPv4Host.key(IPv4Host(value: UInt32(index)), port: 1, secret: secret)
            store.insert(key, flags: PeerFlags(seeder: seeder(index), counted: false, expires: 1), at: store.find(key).location)
        }
        return store
    }

    /// The peers a sample gave, as IPv4 addresses.
    func sample(
        _ store: PeerStore<IPv4Host>, _ want: Int, excluding: UInt32?, seedersWanted: Bool, random: inout SeededGenerator
    ) -> [UInt32] {
        var output = [UInt8](repeating: 0, count: max(want, 0) * 6)
        let given = output.withUnsafeMutableBytes { buffer in
            store.sample(
                want, excluding: excluding.map { IPv4Host.key(IPv4Host(value: $0), port: 1, secret: secret) },
                seedersWanted: seedersWanted, secret: secret, random: &random, into: buffer.baseAddress!)
        }
        return (0..<given).map { index in
            let bytes = output[(index * 6)..<(index * 6 + 4)]
            #expect(output[index * 6 + 4] == 0 && output[index * 6 + 5] == 1, "port 1")
            return bytes.reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    @Test func samplesDistinctPeersNeverTheAskerAndNoSeedsForASeed() {
        let big = store(5000) { $0 % 2 == 0 }
        #expect(big.bucketCount > 1)
        var random = SeededGenerator(seed: 7)
        var firsts: Set<UInt32> = []
        for _ in 0..<50 {
            let seen = sample(big, 50, excluding: 10, seedersWanted: true, random: &random)
            #expect(seen.count == 50 && Set(seen).count == 50 && !seen.contains(10))
            firsts.insert(seen[0])
            let leechers = sample(big, 50, excluding: nil, seedersWanted: false, random: &random)
            #expect(leechers.count == 50 && leechers.allSatisfy { $0 % 2 == 1 })
        }
        #expect(firsts.count > 40, "different askers get different peers")
        // Fewer peers than wanted: all of them but the asker.
        let small = store(5) { _ in false }
        #expect(Set(sample(small, 50, excluding: 2, seedersWanted: true, random: &random)) == [0, 1, 3, 4])
    }

    /// Every size, share of seeds, asker and `want`: exactly min(want, eligible) distinct eligible peers.
    @Test func samplesExactlyWhatIsAskedWhenThereIsEnough() {
        var random = SeededGenerator(seed: 11)
        for _ in 0..<2000 {
            let count = Int(random.next() % 200)
            var seeds: Set<UInt32> = []
            for index in 0..<count where random.next() % 3 == 0 { seeds.insert(UInt32(index)) }
            let store = store(count) { seeds.contains(UInt32($0)) }
            let excluding = count > 0 && random.next() % 4 != 0 ? UInt32(random.next() % UInt64(count)) : nil
            let seedersWanted = random.next() % 2 == 0
            let want = Int(random.next() % 250)
            let eligible = (0..<UInt32(count)).filter { $0 != excluding && (seedersWanted || !seeds.contains($0)) }.count
            let given = sample(store, want, excluding: excluding, seedersWanted: seedersWanted, random: &random)
            #expect(given.count == min(want, eligible), "\(count) peers, want \(want), eligible \(eligible)")
            #expect(Set(given).count == given.count)
            #expect(!given.contains { $0 == excluding })
            if !seedersWanted { #expect(given.allSatisfy { !seeds.contains($0) }) }
        }
    }

    /// `find` guesses a key's index from its value (keys are keyed hashes, spread evenly); keys bunched
    /// together, where every guess misses, must be found as exactly, and absent ones placed in order.
    @Test(arguments: [16, 17, 40, 300, 511, 3000])
    func findsBunchedKeysWhereGuessesMiss(count: Int) {
        var random = SeededGenerator(seed: UInt64(count))
        // Half the keys in a narrow run at a random place of the range, half spread: guesses from the key's
        // place in the range are far off for both (and past 512, the run is more than a bucket holds).
        let base = random.next() & IPv4Host.mask
        let bunched = (count + 1) / 2
        var keys = Set<UInt64>()
        while keys.count < count {
            let key = keys.count < bunched ? (base &+ random.next() % 4096) & IPv4Host.mask : random.next() & IPv4Host.mask
            keys.insert(key)
        }
        var store = PeerStore<IPv4Host>()
        for key in keys {
            let (location, found) = store.find(key)
            #expect(!found)
            store.insert(key, flags: PeerFlags(seeder: false, counted: false, expires: 1), at: location)
        }
        #expect(store.count == count)
        let sorted = keys.sorted()
        #expect(stored(store) == sorted, "records in key order")
        for key in keys { #expect(store.find(key).found, "key \(key)") }
        for _ in 0..<200 {
            let near = random.next() % 2 == 0 ? (base &+ random.next() % 5000) & IPv4Host.mask : random.next() & IPv4Host.mask
            guard !keys.contains(near) else { continue }
            let (location, found) = store.find(near)
            #expect(!found)
            // Where it would go: after every smaller key of its bucket, before every larger one.
            var copy = store
            copy.insert(near, flags: PeerFlags(seeder: false, counted: false, expires: 1), at: location)
            var expected = sorted
            expected.insert(near, at: sorted.firstIndex { $0 > near } ?? sorted.count)
            let after = stored(copy)
            #expect(after == expected, "key \(near)")
            if after != expected { return }
        }
    }

    /// The keys of a store's records, in their order.
    private func stored(_ store: PeerStore<IPv4Host>) -> [UInt64] {
        var keys: [UInt64] = []
        store.forEach(secret: secret) { peer in keys.append(IPv4Host.key(peer.address, port: peer.port, secret: secret)) }
        return keys
    }

    /// One IPv6 host announcing many ports: their keys share the address's top 64 bits, so no split
    /// divides them. The store stays at a few buckets (splitting at every insert doubled them each time:
    /// a remote client could exhaust memory with a few hundred announces) and finds every peer.
    @Test func keysThatNoSplitDividesDoNotMultiplyBuckets() {
        var store = PeerStore<IPv6Host>()
        let host = IPv6Host(high: 0x2001_0DB8_0000_0001, low: 5)
        for port in 1...2000 {
            let key = IPv6Host.key(host, port: UInt16(port), secret: secret)
            let (location, found) = store.find(key)
            #expect(!found)
            store.insert(key, flags: PeerFlags(seeder: false, counted: false, expires: 1), at: location)
        }
        #expect(store.count == 2000)
        #expect(store.bucketCount <= 8, "\(store.bucketCount) buckets")
        for port in 1...2000 { #expect(store.find(IPv6Host.key(host, port: UInt16(port), secret: secret)).found) }
    }

    @Test func recordsAreCompact() {
        #expect(PeerStore<IPv4Host>.recordSize == 7)
        #expect(PeerStore<IPv6Host>.recordSize == 19)
        // Growth by an eighth, not doubling: capacity stays within a few percent of what is held.
        for count in [100, 1000, 10_000] {
            let store = store(count) { _ in false }
            #expect(store.bytesAllocated <= count * 7 * 5 / 4 + 256, "\(count) peers: \(store.bytesAllocated) bytes")
        }
    }
}
