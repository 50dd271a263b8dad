import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalSwarm

/// Random sequences of events, checked against a plain model of what each peer has and was asked for.
@Suite("PiecePicker properties")
struct PiecePickerPropertyTests {
    /// Iteration over the dictionaries is never used to draw at random: their order changes from run to run.
    struct Model {
        var bitfields: [PeerKey: Bitfield] = [:]
        var requests: [Block: Set<PeerKey>] = [:]
        var received: [Block: PeerKey] = [:]

        mutating func dropRequests(of peer: PeerKey) -> [Block] {
            let blocks = requests.filter { $0.value.contains(peer) }.map(\.key).sorted()
            for block in blocks {
                requests[block]?.remove(peer)
                if requests[block]?.isEmpty == true { requests[block] = nil }
            }
            return blocks
        }
    }

    @Test(arguments: 0..<16)
    func randomEventsKeepTheBooks(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let blocksPerPiece = 1 + random.next(upTo: 4)
        let pieceLength = blocksPerPiece * PieceGeometry.blockLength
        let pieceCount = 1 + random.next(upTo: 40)
        let totalLength = Int64(pieceCount * pieceLength - random.next(upTo: pieceLength))
        let geometry = PieceGeometry(pieceCount: pieceCount, pieceLength: pieceLength, totalLength: totalLength)!
        var configuration = PiecePicker.Configuration(randomFirstPieces: random.next(upTo: 6))
        configuration.sequential = random.next(upTo: 4) == 0
        var picker = PiecePicker(geometry: geometry, configuration: configuration)
        var model = Model()
        var nextPeer = 1
        var problems: [String] = []

        func randomBitfield() -> Bitfield {
            var field = Bitfield(count: pieceCount)
            let density = random.next(upTo: 101)
            for piece in 0..<pieceCount where random.next(upTo: 100) < density { field.set(piece) }
            return field
        }

        for step in 0..<300 {
            let peers = model.bitfields.keys.sorted()
            let roll = random.next(upTo: 100)
            if peers.isEmpty || roll < 8 {
                let peer = PeerKey(nextPeer)
                nextPeer += 1
                if random.next(upTo: 6) == 0 {
                    model.bitfields[peer] = Bitfield(count: pieceCount, allSet: true)
                    picker.peerHasAll(peer)
                } else {
                    let field = randomBitfield()
                    model.bitfields[peer] = field
                    picker.peerBitfield(field, peer: peer)
                }
            } else if roll < 14 {
                let peer = peers[random.next(upTo: peers.count)]
                let piece = random.next(upTo: pieceCount)
                if model.bitfields[peer]!.set(piece) { picker.peerHas(piece, peer: peer) }
            } else if roll < 18 {
                let peer = peers[random.next(upTo: peers.count)]
                let released = picker.peerLeft(peer, bitfield: model.bitfields[peer]!)
                let expected = model.dropRequests(of: peer)
                if released != expected { problems.append("step \(step): left with \(released), expected \(expected)") }
                model.bitfields[peer] = nil
            } else if roll < 21 {
                let peer = peers[random.next(upTo: peers.count)]
                let released = picker.peerChoked(peer)
                let expected = model.dropRequests(of: peer)
                if released != expected { problems.append("step \(step): choke released \(released), expected \(expected)") }
            } else if roll < 24 {
                let piece = random.next(upTo: pieceCount)
                picker.setPriority(PiecePriority(rawValue: UInt8(random.next(upTo: 3)))!, of: piece)
            } else if roll < 26 {
                let piece = random.next(upTo: pieceCount)
                picker.pieceVerified(piece)
                model.requests = model.requests.filter { $0.key.piece != piece }
                model.received = model.received.filter { $0.key.piece != piece }
            } else if roll < 55 {
                let peer = peers[random.next(upTo: peers.count)]
                let field = model.bitfields[peer]!
                let count = 1 + random.next(upTo: 12)
                let fast = random.next(upTo: 3) == 0
                let endgame = picker.isEndgame
                let blocks = picker.pick(for: peer, peerHas: field, count: count, fast: fast, random: &random)
                problems += checkPick(
                    blocks, peer: peer, peerHas: field, count: count, endgame: endgame, picker: picker, model: model)
                let sent = random.next(upTo: 5) == 0 ? blocks.prefix(random.next(upTo: blocks.count + 1)) : blocks[...]
                for block in sent {
                    picker.blockRequested(block, by: peer, fast: fast)
                    model.requests[block, default: []].insert(peer)
                }
            } else if roll < 85, let block = model.requests.keys.sorted().randomElement(using: &random) {
                let requesters = model.requests[block]!
                let sender = random.next(upTo: 8) == 0 ? peers[random.next(upTo: peers.count)] : requesters.sorted()[0]
                let wasReceived = model.received[block] != nil
                let arrival = picker.blockReceived(block, from: sender)
                if arrival.isNew == wasReceived { problems.append("step \(step): \(block) new: \(arrival.isNew)") }
                let cancels = requesters.subtracting([sender]).sorted()
                if arrival.cancels != cancels {
                    problems.append("step \(step): cancels \(arrival.cancels), expected \(cancels)")
                }
                model.requests[block] = nil
                if !wasReceived { model.received[block] = sender }
                if arrival.completesPiece {
                    let piece = block.piece
                    let senders = Set(model.received.filter { $0.key.piece == piece }.values).sorted()
                    if random.next(upTo: 4) == 0 {
                        let blamed = picker.pieceFailed(piece)
                        if blamed != senders { problems.append("step \(step): blamed \(blamed), expected \(senders)") }
                    } else {
                        picker.pieceVerified(piece)
                    }
                    model.received = model.received.filter { $0.key.piece != piece }
                }
            } else if let block = model.requests.keys.sorted().randomElement(using: &random) {
                let requesters = model.requests[block]!
                let peer = requesters.sorted()[random.next(upTo: requesters.count)]
                if !picker.requestFailed(block, peer: peer) { problems.append("step \(step): request \(block) not found") }
                model.requests[block]?.remove(peer)
                if model.requests[block]?.isEmpty == true { model.requests[block] = nil }
            }
            problems += checkBooks(picker: picker, model: model).map { "step \(step): \($0)" }
            if !problems.isEmpty { break }
        }
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(5))")
    }

    /// What every pick must satisfy.
    func checkPick(
        _ blocks: [Block], peer: PeerKey, peerHas: Bitfield, count: Int, endgame: Bool, picker: PiecePicker, model: Model
    ) -> [String] {
        var problems: [String] = []
        if blocks.count > count { problems.append("picked \(blocks.count) of \(count)") }
        if Set(blocks).count != blocks.count { problems.append("picked a block twice: \(blocks)") }
        for block in blocks {
            if picker.have[block.piece] { problems.append("picked \(block), which we have") }
            if !peerHas[block.piece] { problems.append("picked \(block), which the peer lacks") }
            if picker.priority(of: block.piece) == .skip { problems.append("picked \(block), which is skipped") }
            if model.received[block] != nil { problems.append("picked \(block), which is received") }
            let requesters = model.requests[block] ?? []
            if requesters.contains(peer) { problems.append("picked \(block) again for \(peer)") }
            if !endgame, !requesters.isEmpty { problems.append("picked \(block) from \(requesters) outside endgame") }
        }
        // A short pick leaves no open block the peer could have had.
        if blocks.count < count {
            let picked = Set(blocks)
            for piece in 0..<picker.geometry.pieceCount
            where peerHas[piece] && !picker.have[piece] && picker.priority(of: piece) != .skip {
                for block in picker.geometry.blocks(ofPiece: piece)
                where picker.status(of: block) == .open && !picked.contains(block) {
                    problems.append("left \(block) open in a short pick of \(blocks.count)/\(count)")
                }
            }
        }
        return problems
    }

    /// The picker's view matches the model: availability, block states, and its own invariants.
    func checkBooks(picker: PiecePicker, model: Model) -> [String] {
        var problems = picker.violations()
        for piece in 0..<picker.geometry.pieceCount {
            let expected = model.bitfields.values.filter { $0[piece] }.count
            if picker.availability(of: piece) != expected {
                problems.append("piece \(piece): availability \(picker.availability(of: piece)), expected \(expected)")
            }
            for block in picker.geometry.blocks(ofPiece: piece) {
                let expected: BlockStatus
                if picker.have[piece] {
                    expected = .have
                } else if let sender = model.received[block] {
                    expected = .received(from: sender)
                } else if let requesters = model.requests[block] {
                    expected = .requested(by: requesters.sorted())
                } else {
                    expected = .open
                }
                if picker.status(of: block) != expected {
                    problems.append("\(block): \(String(describing: picker.status(of: block))), expected \(expected)")
                }
            }
        }
        return problems
    }

    @Test(arguments: 0..<20)
    func rarestFirstPicksAMinimumAvailabilityPiece(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let pieceCount = 1 + random.next(upTo: 300)
        let geometry = PieceGeometry(pieceCount: pieceCount, pieceLength: 16384, totalLength: Int64(pieceCount * 16384))!
        var have = Bitfield(count: pieceCount)
        for piece in 0..<pieceCount where random.next(upTo: 5) == 0 { have.set(piece) }
        var picker = PiecePicker(geometry: geometry, have: have, configuration: .init(randomFirstPieces: 0))
        var bitfields: [Bitfield] = []
        for peer in 0..<(1 + random.next(upTo: 8)) {
            var field = Bitfield(count: pieceCount)
            for piece in 0..<pieceCount where random.next(upTo: 2) == 0 { field.set(piece) }
            bitfields.append(field)
            picker.peerBitfield(field, peer: PeerKey(peer))
        }
        for piece in 0..<pieceCount where random.next(upTo: 10) == 0 {
            picker.setPriority(random.next(upTo: 2) == 0 ? .high : .skip, of: piece)
        }

        var problems: [String] = []
        for round in 0..<30 {
            // Single `have` messages exercise the incremental bucket moves once the order is built.
            for _ in 0..<random.next(upTo: 6) {
                let peer = random.next(upTo: bitfields.count)
                let piece = random.next(upTo: pieceCount)
                if bitfields[peer].set(piece) { picker.peerHas(piece, peer: PeerKey(peer)) }
            }
            let peer = random.next(upTo: bitfields.count)
            let field = bitfields[peer]
            let candidates = (0..<pieceCount).filter { field[$0] && !picker.have[$0] && picker.priority(of: $0) != .skip }
            let picked = picker.pick(for: PeerKey(peer), peerHas: field, count: 1, random: &random)
            guard let top = candidates.map({ picker.priority(of: $0) }).max() else {
                if !picked.isEmpty { problems.append("round \(round): picked \(picked) with no candidate") }
                continue
            }
            let best = candidates.filter { picker.priority(of: $0) == top }.map { picker.availability(of: $0) }.min()!
            guard let piece = picked.first?.piece else {
                problems.append("round \(round): picked nothing")
                continue
            }
            if picker.priority(of: piece) != top || picker.availability(of: piece) != best {
                problems.append("round \(round): picked piece \(piece) (\(picker.availability(of: piece))), best is \(best)")
            }
            problems += picker.violations()
            // Finishing the piece moves it out of the order.
            if random.next(upTo: 2) == 0 { picker.pieceVerified(piece) }
        }
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(5))")
    }
}
