/// The pieces left to pick (wanted and missing), split by priority class and, within a class, kept in buckets
/// of equal availability, rarest first: libtorrent's `m_pieces` with its priority boundaries.
///
/// Each class is one array of piece indices in which bucket `a` (the pieces that `a` non-seed peers have)
/// occupies `starts[a] ..< starts[a + 1]`; `position` maps a piece back to its slot. A change of availability
/// by one swaps the piece with the first or last element of its bucket and moves one boundary: O(1), so a
/// `have` message costs O(1). Inserting or removing a piece (priority change, verified piece) crosses the
/// buckets above it: O(peers). A full rebuild is a counting sort with each bucket shuffled: O(pieces + peers).
/// The shuffle (and the picker starting each bucket scan at a random slot) is what breaks ties between equally
/// rare pieces at random.
struct PieceOrder: Sendable {
    /// Class 0 is `high`, class 1 `normal`.
    static let classCount = 2

    struct Buckets: Sendable {
        var pieces: [Int32] = []
        /// `starts[a]` is the slot of the first piece with availability `a`; bucket 0 always exists.
        var starts: [Int32] = [0]

        var bucketCount: Int { starts.count }
        func start(_ bucket: Int) -> Int { Int(starts[bucket]) }
        func end(_ bucket: Int) -> Int { bucket + 1 < starts.count ? Int(starts[bucket + 1]) : pieces.count }
    }

    private(set) var classes: [Buckets]
    /// Per piece: its slot within its class, or -1 when it is in no class.
    private(set) var position: [Int32]

    init(pieceCount: Int) {
        classes = Array(repeating: Buckets(), count: Self.classCount)
        position = Array(repeating: -1, count: pieceCount)
    }

    /// The number of pieces in every class together.
    var count: Int { classes.reduce(0) { $0 + $1.pieces.count } }

    /// The piece's availability went from `availability` to `availability + 1`.
    mutating func increment(_ piece: Int, class c: Int, from availability: Int) {
        if classes[c].starts.count == availability + 1 {
            classes[c].starts.append(Int32(classes[c].pieces.count))
        }
        let last = classes[c].end(availability) - 1
        swapSlots(c, Int(position[piece]), last)
        classes[c].starts[availability + 1] -= 1
    }

    /// The piece's availability went from `availability` (at least 1) to `availability - 1`.
    mutating func decrement(_ piece: Int, class c: Int, from availability: Int) {
        let first = classes[c].start(availability)
        swapSlots(c, Int(position[piece]), first)
        classes[c].starts[availability] += 1
        trim(c)
    }

    /// Adds a piece that is in no class.
    mutating func insert(_ piece: Int, class c: Int, availability: Int) {
        while classes[c].starts.count <= availability {
            classes[c].starts.append(Int32(classes[c].pieces.count))
        }
        classes[c].pieces.append(Int32(piece))
        position[piece] = Int32(classes[c].pieces.count - 1)
        var bucket = classes[c].starts.count - 1
        while bucket > availability {
            swapSlots(c, Int(position[piece]), classes[c].start(bucket))
            classes[c].starts[bucket] += 1
            bucket -= 1
        }
        trim(c)
    }

    /// Removes a piece from its class.
    mutating func remove(_ piece: Int, class c: Int, availability: Int) {
        var bucket = availability
        while bucket + 1 < classes[c].starts.count {
            swapSlots(c, Int(position[piece]), classes[c].end(bucket) - 1)
            classes[c].starts[bucket + 1] -= 1
            bucket += 1
        }
        swapSlots(c, Int(position[piece]), classes[c].pieces.count - 1)
        classes[c].pieces.removeLast()
        position[piece] = -1
        trim(c)
    }

    /// Sorts every piece for which `classOf` names a class into its bucket, each bucket in random order.
    mutating func rebuild(
        counts: [Int32], classOf: (Int) -> Int?, random: inout some RandomNumberGenerator
    ) {
        let pieceCount = counts.count
        var tags = [Int8](repeating: -1, count: pieceCount)
        var maxima = [Int](repeating: -1, count: Self.classCount)
        for piece in 0..<pieceCount {
            position[piece] = -1
            guard let c = classOf(piece) else { continue }
            tags[piece] = Int8(c)
            maxima[c] = max(maxima[c], Int(counts[piece]))
        }
        for c in 0..<Self.classCount {
            guard maxima[c] >= 0 else {
                classes[c] = Buckets()
                continue
            }
            var sizes = [Int32](repeating: 0, count: maxima[c] + 1)
            for piece in 0..<pieceCount where tags[piece] == Int8(c) { sizes[Int(counts[piece])] += 1 }
            var starts = [Int32](repeating: 0, count: sizes.count)
            var total = 0
            for bucket in 0..<sizes.count {
                starts[bucket] = Int32(total)
                total += Int(sizes[bucket])
            }
            var pieces = [Int32](repeating: 0, count: total)
            var next = starts
            for piece in 0..<pieceCount where tags[piece] == Int8(c) {
                let bucket = Int(counts[piece])
                pieces[Int(next[bucket])] = Int32(piece)
                next[bucket] += 1
            }
            classes[c] = Buckets(pieces: pieces, starts: starts)
            for bucket in 0..<starts.count {
                let lower = classes[c].start(bucket)
                var upper = classes[c].end(bucket) - 1
                while upper > lower {
                    let other = Int.random(in: lower...upper, using: &random)
                    classes[c].pieces.swapAt(upper, other)
                    upper -= 1
                }
            }
            for slot in 0..<total { position[Int(classes[c].pieces[slot])] = Int32(slot) }
        }
    }

    private mutating func swapSlots(_ c: Int, _ i: Int, _ j: Int) {
        guard i != j else { return }
        let a = classes[c].pieces[i]
        let b = classes[c].pieces[j]
        classes[c].pieces[i] = b
        classes[c].pieces[j] = a
        position[Int(a)] = Int32(j)
        position[Int(b)] = Int32(i)
    }

    /// Drops empty buckets at the top, so that walks over buckets stay as short as the highest availability.
    private mutating func trim(_ c: Int) {
        while classes[c].starts.count > 1, classes[c].start(classes[c].starts.count - 1) == classes[c].pieces.count {
            classes[c].starts.removeLast()
        }
    }

    /// Problems with the structure, for tests: each class's buckets hold exactly the pieces `classOf` names,
    /// at their availability, and `position` points back at every slot.
    func violations(counts: [Int32], classOf: (Int) -> Int?) -> [String] {
        var problems: [String] = []
        for c in 0..<Self.classCount {
            let buckets = classes[c]
            if buckets.starts.first != 0 { problems.append("class \(c): bucket 0 does not start at 0") }
            for bucket in 0..<buckets.bucketCount {
                if buckets.start(bucket) > buckets.end(bucket) {
                    problems.append("class \(c): bucket \(bucket) ends before it starts")
                }
                for slot in buckets.start(bucket)..<max(buckets.start(bucket), buckets.end(bucket)) {
                    let piece = Int(buckets.pieces[slot])
                    if counts[piece] != Int32(bucket) {
                        problems.append("piece \(piece) with availability \(counts[piece]) in bucket \(bucket)")
                    }
                    if position[piece] != Int32(slot) {
                        problems.append("piece \(piece) at slot \(slot) has position \(position[piece])")
                    }
                    if classOf(piece) != c {
                        problems.append("piece \(piece) in class \(c), belongs in \(String(describing: classOf(piece)))")
                    }
                }
            }
        }
        for piece in 0..<counts.count where classOf(piece) == nil && position[piece] != -1 {
            problems.append("piece \(piece) in no class has position \(position[piece])")
        }
        if count != (0..<counts.count).filter({ classOf($0) != nil }).count {
            problems.append("count \(count) is wrong")
        }
        return problems
    }
}
