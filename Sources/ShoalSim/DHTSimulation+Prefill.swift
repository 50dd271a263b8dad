import ShoalCore
import ShoalDHT

extension DHTSimulation {
    /// Fills every node's routing table as a long-running DHT would have it, without running the joins: for
    /// each node and each bucket depth `d`, up to `perBucket` random nodes among those that share exactly `d`
    /// leading bits with it, entered through the table's own insertion rules (``RoutingTable``: splits,
    /// capacities, replacement caches). Ids sorted once make each such set a contiguous range.
    ///
    /// This stands for the steady state of a DHT whose nodes have met many others over time; the protocol's
    /// own joins (``scheduleJoins(every:startingAt:)``) build tables from what a node actually heard.
    public func prefillRoutingTables(perBucket: Int? = nil) {
        let k = perBucket ?? shared.configuration.routing.bucketSize
        let order = nodes.indices.sorted { nodes[$0].core.id < nodes[$1].core.id }
        let ids = order.map { nodes[$0].core.id }
        /// The first position whose id is not below `id` (or, with `after`, above it).
        func bound(_ id: NodeID, after: Bool) -> Int {
            var low = 0
            var high = ids.count
            while low < high {
                let mid = (low + high) / 2
                if ids[mid] < id || (after && ids[mid] == id) { low = mid + 1 } else { high = mid }
            }
            return low
        }
        /// Positions of the ids whose first `length` bits are those of `prefix`.
        func range(sharing length: Int, with prefix: NodeID) -> Range<Int> {
            let mask = NodeID.prefixMask(length)
            return bound(prefix & mask, after: false)..<bound((prefix & mask) | ~mask, after: true)
        }
        for index in nodes.indices {
            let own = nodes[index].core.id
            var infos: [NodeInfo] = []
            for depth in 0..<NodeID.bitCount {
                // The nodes sharing exactly `depth` bits: our first `depth` bits, then the other bit.
                let siblings = range(sharing: depth + 1, with: own ^ NodeID.zero.settingBit(depth))
                if !siblings.isEmpty {
                    let capacity = nodes[index].core.table(.ipv4).capacity(ofBucket: depth)
                    let take = min(siblings.count, max(k, capacity))
                    var picked = Set<Int>()
                    while picked.count < take { picked.insert(siblings.lowerBound + random.next(upTo: siblings.count)) }
                    for position in picked.sorted() {
                        infos.append(NodeInfo(id: ids[position], address: Self.address(of: order[position])))
                    }
                }
                // Deeper, only we share our prefix: no more buckets.
                if range(sharing: depth + 1, with: own).count <= 1 { break }
            }
            nodes[index].core.insertAnsweredNodes(infos, now: now)
        }
    }
}
