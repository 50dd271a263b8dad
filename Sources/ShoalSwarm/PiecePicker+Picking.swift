import ShoalCore

extension PiecePicker {
    /// Proposes up to `count` blocks to request from `peer`, best first (see the type's documentation for the
    /// order). Never proposes a block of a piece we have, a piece the peer lacks or a skipped piece, nor a
    /// block already requested from this peer; proposes a block requested from another peer only in endgame.
    /// Records nothing: report each request sent with `blockRequested`, or call `requestBlocks` instead.
    ///
    /// - Parameters:
    ///   - peerHas: the peer's pieces, as reported through `peerBitfield`, `peerHas` or `peerHasAll`. (Rarest
    ///     first trusts the counts: while no seed is connected, a piece that no reported peer has is skipped.)
    ///   - count: how many blocks to propose, usually the peer's queue depth minus its requests in flight.
    ///   - fast: the peer gets whole pieces to itself (`isFast(downloadRate:)` is one way to decide).
    ///   - duplicates: whether endgame duplicates may be proposed now. A runtime allows them only when the peer
    ///     would otherwise sit idle (nothing asked of it in flight): with deep request queues every block is
    ///     requested long before the end, and duplicating at every pick would waste much of the bandwidth.
    ///   - random: the source of random-first picks and of ties between equally rare pieces.
    public mutating func pick(
        for peer: PeerKey, peerHas: Bitfield, count: Int, fast: Bool = false, duplicates: Bool = true,
        random: inout some RandomNumberGenerator
    ) -> [Block] {
        guard count > 0, peerHas.count == geometry.pieceCount, remainingCount > 0, !peerHas.isEmpty else { return [] }
        if orderIsStale { rebuildOrder(random: &random) }
        var picked: [Block] = []
        picked.reserveCapacity(min(count, 1024))
        if fast {
            pickPartials(.mine, peer: peer, peerHas: peerHas, count: count, into: &picked)
            pickNewPieces(peerHas: peerHas, count: count, into: &picked, random: &random)
            pickPartials(.free, peer: peer, peerHas: peerHas, count: count, into: &picked)
        } else {
            pickPartials(.mineOrFree, peer: peer, peerHas: peerHas, count: count, into: &picked)
            pickNewPieces(peerHas: peerHas, count: count, into: &picked, random: &random)
        }
        pickPartials(.others, peer: peer, peerHas: peerHas, count: count, into: &picked)
        if picked.isEmpty, duplicates, configuration.endgame, isEndgame {
            pickDuplicates(peer: peer, peerHas: peerHas, count: count, into: &picked, random: &random)
        }
        return picked
    }

    /// Picks and records in one step: `pick`, then `blockRequested` for each block. Returns the blocks to
    /// request.
    public mutating func requestBlocks(
        for peer: PeerKey, peerHas: Bitfield, count: Int, fast: Bool = false, duplicates: Bool = true,
        random: inout some RandomNumberGenerator
    ) -> [Block] {
        let blocks = pick(
            for: peer, peerHas: peerHas, count: count, fast: fast, duplicates: duplicates, random: &random)
        for block in blocks { blockRequested(block, by: peer, fast: fast) }
        return blocks
    }

    /// Whether a peer downloading at `downloadRate` bytes per second fetches a whole piece within `threshold`,
    /// and so should get whole pieces (libtorrent's `whole_pieces_threshold`, 20 s).
    public func isFast(downloadRate: Double, threshold: Interval = .seconds(20)) -> Bool {
        downloadRate * threshold.seconds >= Double(geometry.pieceLength)
    }

    // MARK: - The steps of a pick

    /// Which pieces in progress a step may take open blocks from, by their reservation.
    enum Reservation {
        case mine, free, mineOrFree, others

        func admits(_ reservedFor: PeerKey?, peer: PeerKey) -> Bool {
            switch self {
            case .mine: return reservedFor == peer
            case .free: return reservedFor == nil
            case .mineOrFree: return reservedFor == nil || reservedFor == peer
            case .others: return reservedFor != nil && reservedFor != peer
            }
        }
    }

    /// Open blocks of pieces in progress, high priority first.
    private func pickPartials(
        _ reservation: Reservation, peer: PeerKey, peerHas: Bitfield, count: Int, into picked: inout [Block]
    ) {
        for pass in 0..<2 {
            let wanted: PiecePriority = pass == 0 ? .high : .normal
            for partial in partials {
                guard picked.count < count else { return }
                guard partial.openCount > 0, priorities[partial.piece] == wanted,
                    reservation.admits(partial.reservedFor, peer: peer), peerHas[partial.piece]
                else { continue }
                for index in partial.slots.indices where partial.slots[index].state == .open {
                    picked.append(geometry.block(piece: partial.piece, index: index))
                    if picked.count == count { return }
                }
            }
        }
    }

    /// Pieces nobody is downloading yet.
    private mutating func pickNewPieces(
        peerHas: Bitfield, count: Int, into picked: inout [Block], random: inout some RandomNumberGenerator
    ) {
        if configuration.sequential {
            pickRarest(class: 0, peerHas: peerHas, count: count, into: &picked, random: &random)
            pickSequential(peerHas: peerHas, count: count, into: &picked)
        } else if have.setCount < configuration.randomFirstPieces {
            for c in 0..<PieceOrder.classCount {
                pickRandom(class: c, peerHas: peerHas, count: count, into: &picked, random: &random)
            }
        } else {
            for c in 0..<PieceOrder.classCount {
                pickRarest(class: c, peerHas: peerHas, count: count, into: &picked, random: &random)
            }
        }
    }

    /// Rarest first: bucket by bucket from the lowest availability, each bucket scanned from a random slot.
    /// Pieces in bucket 0 are had by no peer unless there are seeds, so that bucket is skipped without them.
    private func pickRarest(
        class c: Int, peerHas: Bitfield, count: Int, into picked: inout [Block],
        random: inout some RandomNumberGenerator
    ) {
        let buckets = order.classes[c]
        for bucket in (seeds.isEmpty ? 1 : 0)..<buckets.bucketCount {
            guard picked.count < count else { return }
            let lower = buckets.start(bucket)
            let upper = buckets.end(bucket)
            guard upper > lower else { continue }
            var slot = Int.random(in: lower..<upper, using: &random)
            for _ in lower..<upper {
                let piece = Int(buckets.pieces[slot])
                if partialSlot[piece] < 0, peerHas[piece] {
                    takeNewPiece(piece, count: count, into: &picked)
                    if picked.count == count { return }
                }
                slot += 1
                if slot == upper { slot = lower }
            }
        }
    }

    /// Random first: the class's pieces in any availability, scanned from a random slot.
    private func pickRandom(
        class c: Int, peerHas: Bitfield, count: Int, into picked: inout [Block],
        random: inout some RandomNumberGenerator
    ) {
        let pieces = order.classes[c].pieces
        guard picked.count < count, !pieces.isEmpty else { return }
        var slot = Int.random(in: 0..<pieces.count, using: &random)
        for _ in 0..<pieces.count {
            let piece = Int(pieces[slot])
            if partialSlot[piece] < 0, peerHas[piece] {
                takeNewPiece(piece, count: count, into: &picked)
                if picked.count == count { return }
            }
            slot += 1
            if slot == pieces.count { slot = 0 }
        }
    }

    /// Sequential: normal-priority pieces by index, from the first one we lack.
    private mutating func pickSequential(peerHas: Bitfield, count: Int, into picked: inout [Block]) {
        let pieceCount = geometry.pieceCount
        while sequentialCursor < pieceCount, have[sequentialCursor] || priorities[sequentialCursor] != .normal {
            sequentialCursor += 1
        }
        var piece = sequentialCursor
        while picked.count < count, piece < pieceCount {
            if priorities[piece] == .normal, !have[piece], partialSlot[piece] < 0, peerHas[piece] {
                takeNewPiece(piece, count: count, into: &picked)
            }
            piece += 1
        }
    }

    private func takeNewPiece(_ piece: Int, count: Int, into picked: inout [Block]) {
        let blocks = min(geometry.blockCount(ofPiece: piece), count - picked.count)
        for index in 0..<blocks { picked.append(geometry.block(piece: piece, index: index)) }
    }

    /// Endgame: blocks requested from other peers (fewer than `maxRequestersPerBlock`), those with the fewest
    /// requesters first, ties at random.
    private func pickDuplicates(
        peer: PeerKey, peerHas: Bitfield, count: Int, into picked: inout [Block],
        random: inout some RandomNumberGenerator
    ) {
        var candidates: [(requesters: Int, tieBreak: UInt64, block: Block)] = []
        for partial in partials where priorities[partial.piece] != .skip && peerHas[partial.piece] {
            for index in partial.slots.indices {
                let slot = partial.slots[index]
                guard slot.state == .requested, !slot.isRequested(by: peer),
                    slot.requesterCount < configuration.maxRequestersPerBlock
                else { continue }
                let block = geometry.block(piece: partial.piece, index: index)
                candidates.append((slot.requesterCount, random.next(), block))
            }
        }
        candidates.sort { ($0.requesters, $0.tieBreak) < ($1.requesters, $1.tieBreak) }
        picked.append(contentsOf: candidates.prefix(count).map(\.block))
    }
}
