import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

/// Whole torrents talking to each other in memory: every byte goes through the real wire encoder and
/// decoder, every block through the picker, every piece through a SHA-1 check.
@Suite("Torrent state machine")
struct TorrentStateMachineTests {
    @Test func aLeecherDownloadsEverythingFromASeed() throws {
        let content = Content(totalLength: 300_000, pieceLength: 32768, seed: 1)
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        swarm.introduce(leecher, to: seed)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content), "the leecher's data differs from the content")
        #expect(swarm.node(leecher).verified == Set(0..<content.geometry.pieceCount))
    }

    /// Bytes as sockets deliver them: each send cut at random points (a block's head often alone, the case the
    /// engine decodes without a copy), the data still exact.
    @Test(arguments: [3, 4] as [UInt64])
    func messagesCutAnywhereStillDeliverExactData(seed: UInt64) throws {
        let content = Content(totalLength: 200_000, pieceLength: 32768, seed: seed)
        var swarm = MemorySwarm(content: content)
        swarm.cutSends = SplitMix64(seed: seed)
        let source = swarm.addNode(complete: true)
        let leecher = swarm.addNode(complete: false)
        swarm.introduce(leecher, to: source)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content))
        #expect(swarm.node(leecher).banned.isEmpty)
    }

    @Test func piecesFlowBetweenLeechersWhileTheSeedServes() throws {
        let content = Content(totalLength: 600_000, pieceLength: 16384, seed: 2)
        var swarm = MemorySwarm(content: content)
        let seed = swarm.addNode(complete: true)
        let leechers = (0..<3).map { _ in swarm.addNode(complete: false) }
        for leecher in leechers { swarm.introduce(leecher, to: seed) }
        swarm.introduce(leechers[0], to: leechers[1])
        swarm.introduce(leechers[1], to: leechers[2])
        swarm.introduce(leechers[2], to: leechers[0])
        try swarm.run(until: { swarm in leechers.allSatisfy { swarm.node($0).machine.isComplete } })
        for leecher in leechers { #expect(swarm.node(leecher).hasContent(content), "leecher \(leecher) differs") }
        // Leechers uploaded to each other: the seed did not serve every block itself.
        let fromLeechers = leechers.reduce(0) { $0 + swarm.node($1).blocksServed }
        #expect(fromLeechers > 0)
    }

    @Test func aPeerSendingBadDataIsBannedAndTheDownloadCompletes() throws {
        let content = Content(totalLength: 400_000, pieceLength: 16384, seed: 3)
        var swarm = MemorySwarm(content: content)
        let honest = swarm.addNode(complete: true)
        let liar = swarm.addNode(complete: true, corrupt: true)
        let leecher = swarm.addNode(complete: false)
        swarm.introduce(leecher, to: liar)
        swarm.introduce(leecher, to: honest)
        try swarm.run(until: { $0.node(leecher).machine.isComplete })
        #expect(swarm.node(leecher).hasContent(content), "the leecher's data differs from the content")
        #expect(swarm.node(leecher).banned.contains(swarm.node(liar).address))
        #expect(!swarm.node(leecher).banned.contains(swarm.node(honest).address))
    }
}

/// Deterministic torrent content and its piece hashes.
struct Content {
    let bytes: [UInt8]
    let geometry: PieceGeometry
    let pieceHashes: [UInt8]
    let infoHash: Digest20

    init(totalLength: Int, pieceLength: Int, seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        bytes = (0..<totalLength).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        geometry = PieceGeometry(pieceLength: pieceLength, totalLength: Int64(totalLength))
        var hashes: [UInt8] = []
        for piece in 0..<geometry.pieceCount {
            let start = piece * pieceLength
            hashes += Content.sha1(bytes[start..<min(totalLength, start + pieceLength)]).bytes
        }
        pieceHashes = hashes
        infoHash = Content.sha1(hashes[...])
    }

    static func sha1(_ bytes: ArraySlice<UInt8>) -> Digest20 { InfoHash.v1(ofInfo: bytes).truncated }
}

/// A runtime in memory: executes every node's actions, delivering bytes between connected nodes,
/// storing blocks in arrays, hashing pieces; time moves forward by ticks.
struct MemorySwarm {
    struct Node {
        /// Whether its data is the content (a Bool, so that a failure does not diff megabytes).
        func hasContent(_ content: Content) -> Bool { data == content.bytes }

        var machine: TorrentStateMachine
        var address: PeerAddress
        var data: [UInt8]
        var corrupt: Bool
        var verified: Set<Int> = []
        var banned: Set<PeerAddress> = []
        var blocksServed = 0
        /// `.completed` actions seen.
        var completions = 0
        /// Takes requests and never answers them.
        var mute = false
        /// Never tells its machine that a block went out (`blockSent`): keeps them in `unconfirmed`.
        var holdsSends = false
        var unconfirmed: [(key: PeerKey, block: Block)] = []
        /// Blocks read for peers (`read` actions carried out).
        var reads: [Block] = []
    }

    /// A connection end: which node and which key it has for the peer.
    struct End: Hashable {
        var node: Int
        var key: PeerKey
    }

    let content: Content
    private(set) var nodes: [Node] = []
    private var links: [End: End] = [:]
    private var pending: [(node: Int, action: TorrentAction)] = []
    private(set) var now = Instant.zero + .seconds(1)
    /// When set, each send reaches its peer in pieces cut at random (one in four right after a 13-byte head).
    var cutSends: SplitMix64?

    init(content: Content) {
        self.content = content
    }

    func node(_ index: Int) -> Node { nodes[index] }

    mutating func addNode(
        complete: Bool, corrupt: Bool = false, mute: Bool = false, configure: (inout TorrentStateMachine.Configuration) -> Void = { _ in }
    ) -> Int {
        let index = nodes.count
        var random = SeededGenerator(seed: UInt64(index + 100))
        var configuration = TorrentStateMachine.Configuration(
            infoHash: content.infoHash, peerID: PeerID.shoal(using: &random), geometry: content.geometry,
            pieceHashes: content.pieceHashes, seed: UInt64(index))
        configure(&configuration)
        var data = complete ? content.bytes : [UInt8](repeating: 0, count: content.bytes.count)
        if corrupt { for index in stride(from: 0, to: data.count, by: 997) { data[index] ^= 0xFF } }
        nodes.append(
            Node(
                machine: TorrentStateMachine(
                    configuration: configuration, have: Bitfield(count: content.geometry.pieceCount, allSet: complete)),
                address: PeerAddress("10.0.0.\(index + 1):6881")!, data: data, corrupt: corrupt, mute: mute))
        return index
    }

    /// Tells a node's machine that the blocks it held back (``Node/holdsSends``) went out.
    mutating func confirmSends(of node: Int) {
        let held = nodes[node].unconfirmed
        nodes[node].unconfirmed = []
        for (key, block) in held { enqueue(nodes[node].machine.blockSent(block, to: key, now: now), at: node) }
    }

    mutating func setHoldsSends(_ node: Int, _ holds: Bool) { nodes[node].holdsSends = holds }

    /// Runs `body` on a node's state machine (for controls the tests exercise).
    mutating func mutateMachine(_ node: Int, _ body: (inout TorrentStateMachine) -> [TorrentAction]) -> [TorrentAction] {
        body(&nodes[node].machine)
    }

    /// Queues actions a node's machine returned.
    mutating func enqueue(_ actions: [TorrentAction], at node: Int) {
        pending += actions.map { (node, $0) }
    }

    /// `from` learns `to`'s address and dials it.
    mutating func introduce(_ from: Int, to: Int) {
        let actions = nodes[from].machine.addPeers([nodes[to].address], source: .manual, now: now)
        pending += actions.map { (from, $0) }
    }

    /// Runs actions and ticks until `done` holds; fails after a bounded number of steps.
    mutating func run(until done: (MemorySwarm) -> Bool, maxSteps: Int = 500_000) throws {
        var steps = 0
        while !done(self) {
            steps += 1
            guard steps < maxSteps else { throw SwarmError(description: "no completion within \(maxSteps) steps") }
            if pending.isEmpty {
                now = now + .milliseconds(500)
                for index in nodes.indices {
                    pending += nodes[index].machine.tick(now: now).map { (index, $0) }
                }
                continue
            }
            let (index, action) = pending.removeFirst()
            execute(action, at: index)
        }
        // Finish what is already under way (the last `verified`, haves, closes), without new ticks.
        while !pending.isEmpty && steps < maxSteps {
            steps += 1
            let (index, action) = pending.removeFirst()
            execute(action, at: index)
        }
    }

    private mutating func execute(_ action: TorrentAction, at index: Int) {
        var results: [TorrentAction] = []
        switch action {
        case .connect(let key, let address):
            guard let target = nodes.firstIndex(where: { $0.address == address }),
                let remoteKey = nodes[target].machine.accepted(from: nodes[index].address, now: now)
            else {
                results = nodes[index].machine.connectionFailed(key, now: now)
                break
            }
            links[End(node: index, key: key)] = End(node: target, key: remoteKey)
            links[End(node: target, key: remoteKey)] = End(node: index, key: key)
            results = nodes[index].machine.connectionEstablished(key, now: now)
        case .send(let key, var bytes):
            guard let remote = links[End(node: index, key: key)] else { break }
            var parts: [ByteBuffer] = []
            if var random = cutSends {
                while bytes.readableBytes > 0 {
                    let length =
                        random.next() % 4 == 0
                        ? min(13, bytes.readableBytes) : Int(random.next() % UInt64(bytes.readableBytes)) + 1
                    parts.append(bytes.readSlice(length: length)!)
                }
                cutSends = random
            } else {
                parts = [bytes]
            }
            for var part in parts {
                let answers = nodes[remote.node].machine.received(&part, from: remote.key, now: now)
                pending += answers.map { (remote.node, $0) }
            }
        case .close(let key):
            guard let remote = links.removeValue(forKey: End(node: index, key: key)) else { break }
            links[remote] = nil
            pending += nodes[remote.node].machine.connectionClosed(remote.key, now: now).map { (remote.node, $0) }
        case .ban(let address):
            nodes[index].banned.insert(address)
        case .write(let block, var data):
            let bytes = data.readBytes(length: data.readableBytes) ?? []
            let start = block.piece * content.geometry.pieceLength + block.offset
            nodes[index].data.replaceSubrange(start..<(start + bytes.count), with: bytes)
            results = nodes[index].machine.blockWritten(block, now: now)
        case .notifySent(let key, let block):
            // Sends reach the peer at once here: the block is out.
            if nodes[index].holdsSends {
                nodes[index].unconfirmed.append((key, block))
            } else {
                results = nodes[index].machine.blockSent(block, to: key, now: now)
            }
        case .read(let key, let block):
            nodes[index].reads.append(block)
            if nodes[index].mute { break }
            let start = block.piece * content.geometry.pieceLength + block.offset
            let buffer = ByteBuffer(bytes: nodes[index].data[start..<(start + block.length)])
            nodes[index].blocksServed += 1
            results = nodes[index].machine.blockRead(block, data: buffer, for: key, now: now)
        case .hash(let piece):
            let start = piece * content.geometry.pieceLength
            let slice = nodes[index].data[start..<(start + content.geometry.length(ofPiece: piece))]
            results = nodes[index].machine.pieceHashed(piece, digest: Content.sha1(slice), now: now)
        case .verified(let piece):
            nodes[index].verified.insert(piece)
        case .completed:
            nodes[index].completions += 1
        }
        pending += results.map { (index, $0) }
    }
}

struct SwarmError: Error, CustomStringConvertible {
    var description: String
}
