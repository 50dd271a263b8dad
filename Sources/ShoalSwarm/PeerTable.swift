/// The connected peers of a torrent by key: keys ascending in one array, their values at the same indices
/// in another. A lookup is a binary search over a few dozen integers, where a dictionary hashed each key
/// with SipHash on every message; the values are read and changed in place through `values[index]` (an
/// array's accessors do not copy, where a dictionary's `values[index]` read copied the whole peer, every
/// queue of it retained, then released); and iterating goes in key order, which every loop over the peers
/// needs for a run to repeat from its seed.
///
/// Inserting and removing move the elements after the place (peers come and go far less often than
/// messages arrive).
struct PeerTable<Value> {
    /// Ascending.
    private(set) var keys: [PeerKey] = []
    /// `values[i]` belongs to `keys[i]`. Elements may be changed in place; only the table adds and removes.
    var values: [Value] = []

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var indices: Range<Int> { keys.indices }

    /// Where the value of `key` is, if the table has it.
    func index(forKey key: PeerKey) -> Int? {
        let place = insertionPoint(of: key)
        return place < keys.count && keys[place] == key ? place : nil
    }

    func contains(_ key: PeerKey) -> Bool { index(forKey: key) != nil }

    /// Stores `value` for `key`; returns the value it replaces, if any.
    @discardableResult
    mutating func updateValue(_ value: Value, forKey key: PeerKey) -> Value? {
        let place = insertionPoint(of: key)
        if place < keys.count && keys[place] == key {
            let old = values[place]
            values[place] = value
            return old
        }
        keys.insert(key, at: place)
        values.insert(value, at: place)
        return nil
    }

    /// Takes `key` and its value out; nil when the table does not have it.
    @discardableResult
    mutating func removeValue(forKey key: PeerKey) -> Value? {
        guard let index = index(forKey: key) else { return nil }
        keys.remove(at: index)
        return values.remove(at: index)
    }

    /// The first index whose key is not less than `key`.
    private func insertionPoint(of key: PeerKey) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) >> 1
            if keys[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

extension PeerTable: Sendable where Value: Sendable {}
