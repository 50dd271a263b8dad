import ShoalCore

/// Who is in the swarm, as a tracker would tell it: a joining peer asks for up to `want` addresses and
/// gets a random sample of the peers listed. (A stand-in until the simulator runs the real tracker core.)
struct SimDirectory {
    private var listed: [Int] = []
    private var position: [Int: Int] = [:]

    var count: Int { listed.count }

    mutating func insert(_ node: Int) {
        guard position[node] == nil else { return }
        position[node] = listed.count
        listed.append(node)
    }

    mutating func remove(_ node: Int) {
        guard let index = position.removeValue(forKey: node) else { return }
        let last = listed.removeLast()
        if last != node {
            listed[index] = last
            position[last] = index
        }
    }

    /// Up to `want` listed nodes other than `node`, drawn at random without repetition.
    func sample(_ want: Int, excluding node: Int, using random: inout SplitMix64) -> [Int] {
        let others = listed.count - (position[node] == nil ? 0 : 1)
        guard others > 0 else { return [] }
        if others <= want { return listed.filter { $0 != node } }
        var chosen: Set<Int> = []
        var result: [Int] = []
        // Rejection sampling: want is small next to the swarm here, so this ends quickly; bounded anyway.
        var attempts = 0
        while result.count < want && attempts < 20 * want {
            attempts += 1
            let candidate = listed[random.next(upTo: listed.count)]
            if candidate != node, chosen.insert(candidate).inserted { result.append(candidate) }
        }
        return result
    }
}
