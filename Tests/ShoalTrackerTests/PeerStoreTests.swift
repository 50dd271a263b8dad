import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalTracker

@Suite("Peer store")
struct PeerStoreTests {
    let key: (UInt64, UInt64) = (0x1234, 0x5678)

    /// Random inserts, updates and removals, checked against a dictionary after every step, across the
    /// sizes where the store scans, builds its index, grows it, and drops it again.
    @Test(arguments: [1, 2, 3])
    func agreesWithADictionaryUnderRandomChanges(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var store = PeerStore<IPv4Host>()
        var model: [PeerKey4: (expires: UInt32, seeder: Bool)] = [:]
        for step in 0..<6000 {
            // Grow for a while, then shrink, so every regime is crossed.
            let growing = (step / 1500) % 2 == 0
            let address = IPv4Host(value: UInt32(random.next() % 64))
            let port = UInt16(1 + random.next() % 16)
            let peer = PeerKey4(address: address, port: port)
            let position = store.find(address, port: port, key: key)
            #expect((position != nil) == (model[peer] != nil))
            if let position {
                if growing && random.next() % 3 != 0 {
                    let seeder = random.next() % 2 == 0
                    store.update(at: position, expires: UInt32(step), seeder: seeder, counted: false)
                    model[peer] = (UInt32(step), seeder)
                } else {
                    store.remove(at: position, key: key)
                    model[peer] = nil
                }
            } else if growing || random.next() % 4 == 0 {
                let seeder = random.next() % 2 == 0
                store.insert(PeerRecord(address: address, expires: UInt32(step), port: port, flags: seeder ? 1 : 0), key: key)
                model[peer] = (UInt32(step), seeder)
            }
            #expect(store.count == model.count)
            #expect(store.seeders == model.values.filter(\.seeder).count)
        }
        for (peer, value) in model {
            let position = store.find(peer.address, port: peer.port, key: key)
            #expect(position.map { store.records[$0].expires } == value.expires)
        }
    }

    struct PeerKey4: Hashable {
        var address: IPv4Host
        var port: UInt16
    }

    @Test func expiresOnlyPeersPastTheirTime() {
        var store = PeerStore<IPv6Host>()
        for index in 0..<100 {
            store.insert(PeerRecord(address: IPv6Host(high: 1, low: UInt64(index)), expires: UInt32(index), port: 1, flags: 0), key: key)
        }
        #expect(store.removeExpired(before: 40, key: key) == 40)
        #expect(store.count == 60)
        #expect(store.records.allSatisfy { $0.expires >= 40 })
        for index in 40..<100 {
            #expect(store.find(IPv6Host(high: 1, low: UInt64(index)), port: 1, key: key) != nil)
        }
        #expect(store.find(IPv6Host(high: 1, low: 3), port: 1, key: key) == nil)
    }

    @Test func samplesDistinctPeersNeverTheAskerAndNoSeedsForASeed() {
        var store = PeerStore<IPv4Host>()
        for index in 0..<1000 {
            store.insert(PeerRecord(address: IPv4Host(value: UInt32(index)), expires: 1, port: 1, flags: index % 2 == 0 ? 1 : 0), key: key)
        }
        var random = SeededGenerator(seed: 7)
        var firsts: Set<UInt32> = []
        for _ in 0..<50 {
            var seen: [UInt32] = []
            store.sample(50, excluding: 10, seedersWanted: true, random: &random) { seen.append($0.address.value) }
            #expect(seen.count == 50 && Set(seen).count == 50 && !seen.contains(10))
            firsts.insert(seen[0])
            var leechers: [PeerRecord<IPv4Host>] = []
            store.sample(50, excluding: nil, seedersWanted: false, random: &random) { leechers.append($0) }
            #expect(leechers.count == 50 && leechers.allSatisfy { !$0.isSeeder })
        }
        #expect(firsts.count > 40, "different askers get different peers")
        // Fewer peers than wanted: all of them but the asker.
        var small = PeerStore<IPv4Host>()
        for index in 0..<5 { small.insert(PeerRecord(address: IPv4Host(value: UInt32(index)), expires: 1, port: 1, flags: 0), key: key) }
        var all: [UInt32] = []
        small.sample(50, excluding: 2, seedersWanted: true, random: &random) { all.append($0.address.value) }
        #expect(Set(all) == [0, 1, 3, 4])
    }

    /// Every size, share of seeds, asker and `want`: exactly min(want, eligible) distinct eligible peers.
    @Test func samplesExactlyWhatIsAskedWhenThereIsEnough() {
        var random = SeededGenerator(seed: 11)
        for _ in 0..<3000 {
            let count = Int(random.next() % 200)
            var store = PeerStore<IPv4Host>()
            for index in 0..<count {
                let seeder = random.next() % 3 == 0
                store.insert(PeerRecord(address: IPv4Host(value: UInt32(index)), expires: 1, port: 1, flags: seeder ? 1 : 0), key: key)
            }
            let excluding = count > 0 && random.next() % 4 != 0 ? Int(random.next() % UInt64(count)) : nil
            let seedersWanted = random.next() % 2 == 0
            let want = Int(random.next() % 250)
            let eligible = store.records.indices.filter { $0 != excluding && (seedersWanted || !store.records[$0].isSeeder) }.count
            var given: [UInt32] = []
            store.sample(want, excluding: excluding, seedersWanted: seedersWanted, random: &random) { given.append($0.address.value) }
            #expect(given.count == min(want, eligible), "\(count) peers, want \(want), eligible \(eligible)")
            #expect(Set(given).count == given.count)
            #expect(!given.contains { excluding.map { store.records[$0].address.value } == $0 })
            if !seedersWanted { #expect(given.allSatisfy { !store.records[Int($0)].isSeeder }) }
        }
    }

    @Test func recordsAreCompact() {
        #expect(MemoryLayout<PeerRecord<IPv4Host>>.stride == 12)
        #expect(MemoryLayout<PeerRecord<IPv6Host>>.stride == 24)
    }
}
