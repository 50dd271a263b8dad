import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire

@testable import ShoalSwarm

/// Torrent content with a real info dictionary: what a magnet link names.
struct MagnetContent {
    let bytes: [UInt8]
    let metainfo: Metainfo
    var geometry: PieceGeometry { PieceGeometry(info: metainfo.info)! }
    var infoHash: Digest20 { metainfo.infoHashV1! }
    var magnetLink: MagnetLink { metainfo.magnetLink }

    init(totalLength: Int, pieceLength: Int, seed: UInt64, isPrivate: Bool = false) {
        var random = SeededGenerator(seed: seed)
        bytes = (0..<totalLength).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        var hashes: [UInt8] = []
        for start in stride(from: 0, to: totalLength, by: pieceLength) {
            hashes += Content.sha1(bytes[start..<min(totalLength, start + pieceLength)]).bytes
        }
        let info = try! InfoDictionary(
            name: "content.bin", pieceLength: pieceLength, pieceHashes: hashes,
            files: [(try! TorrentPath(validating: ["content.bin"]), Int64(totalLength))], isDirectory: false,
            isPrivate: isPrivate)
        metainfo = Metainfo(info: info)
    }
}

/// Nodes that start from the torrent or from its magnet link, in memory. A magnet node runs a
/// ``MagnetStateMachine`` until the metadata arrives, then (as the runtimes do) a ``TorrentStateMachine``
/// made from the info dictionary, which dials the peers carried over. Every byte goes through the real
/// encoders and decoders; time moves by ticks of half a second.
struct MagnetSwarm {
    enum Engine {
        case magnet(MagnetStateMachine)
        case torrent(TorrentStateMachine)
    }

    struct Node {
        var engine: Engine
        var address: PeerAddress
        var data: [UInt8]
        var verified: Set<Int> = []
        var banned: Set<PeerAddress> = []
        /// The info dictionary a magnet node fetched, and the peers it carried over.
        var fetchedInfo: [UInt8]?
        var carried: [PeerAddress] = []
        /// Addresses it dialled, in order.
        var dialled: [PeerAddress] = []

        var torrent: TorrentStateMachine? {
            if case .torrent(let machine) = engine { return machine }
            return nil
        }
        var isComplete: Bool { torrent?.isComplete ?? false }
    }

    /// Every action either engine asks for.
    enum Step {
        case connect(PeerKey, PeerAddress)
        case send(PeerKey, ByteBuffer)
        case close(PeerKey)
        case ban(PeerAddress)
        case write(Block, ByteBuffer)
        case read(PeerKey, Block)
        case sent(PeerKey, Block)
        case hash(Int)
        case verified(Int)
        case metadata([UInt8], peers: [PeerAddress])
        case other
    }

    struct End: Hashable {
        var node: Int
        var key: PeerKey
    }

    let content: MagnetContent
    private(set) var nodes: [Node] = []
    private var links: [End: End] = [:]
    private var pending: [(node: Int, step: Step)] = []
    private(set) var now = Instant.zero + .seconds(1)
    /// How a node's torrent is configured (both at the start and after a magnet phase).
    var configure: (inout TorrentStateMachine.Configuration) -> Void = { $0.peerExchange = true }

    init(content: MagnetContent) {
        self.content = content
    }

    func node(_ index: Int) -> Node { nodes[index] }

    private func torrentConfiguration(_ index: Int, metainfo: Metainfo) -> TorrentStateMachine.Configuration {
        var random = SeededGenerator(seed: UInt64(index + 100))
        var configuration = TorrentStateMachine.Configuration(
            infoHash: metainfo.infoHashV1!, peerID: PeerID.shoal(using: &random),
            geometry: PieceGeometry(info: metainfo.info)!, pieceHashes: metainfo.info.pieceHashes,
            seed: UInt64(index), infoBytes: metainfo.infoBytes, isPrivate: metainfo.info.isPrivate,
            listenPort: 6881)
        configure(&configuration)
        return configuration
    }

    /// A node with the torrent, complete (a seed) or empty.
    mutating func addTorrentNode(
        complete: Bool, corruptMetadata: Bool = false, configure: (inout TorrentStateMachine.Configuration) -> Void = { _ in }
    ) -> Int {
        let index = nodes.count
        var configuration = torrentConfiguration(index, metainfo: content.metainfo)
        configure(&configuration)
        if corruptMetadata, var info = configuration.infoBytes {
            info[info.count / 2] ^= 0xFF
            configuration.infoBytes = info
        }
        let machine = TorrentStateMachine(
            configuration: configuration, have: Bitfield(count: content.geometry.pieceCount, allSet: complete))
        nodes.append(
            Node(
                engine: .torrent(machine), address: PeerAddress("10.0.0.\(index + 1):6881")!,
                data: complete ? content.bytes : [UInt8](repeating: 0, count: content.bytes.count)))
        return index
    }

    /// A node that knows only the magnet link.
    mutating func addMagnetNode(peerExchange: Bool = true) -> Int {
        let index = nodes.count
        var random = SeededGenerator(seed: UInt64(index + 100))
        let machine = MagnetStateMachine(
            configuration: .init(
                infoHashes: content.magnetLink.infoHashes, peerID: PeerID.shoal(using: &random),
                peerExchange: peerExchange, listenPort: 6881, seed: UInt64(index)))
        nodes.append(
            Node(
                engine: .magnet(machine), address: PeerAddress("10.0.0.\(index + 1):6881")!,
                data: [UInt8](repeating: 0, count: content.bytes.count)))
        return index
    }

    /// `from` learns `to`'s address and dials it.
    mutating func introduce(_ from: Int, to: Int) {
        let address = nodes[to].address
        let steps: [Step]
        switch nodes[from].engine {
        case .magnet(var machine):
            steps = machine.addPeers([address], source: .manual, now: now).map(Self.step)
            nodes[from].engine = .magnet(machine)
        case .torrent(var machine):
            steps = machine.addPeers([address], source: .manual, now: now).map(Self.step)
            nodes[from].engine = .torrent(machine)
        }
        pending += steps.map { (from, $0) }
    }

    /// Runs until `done` holds; throws after `maxSteps`.
    mutating func run(until done: (MagnetSwarm) -> Bool, maxSteps: Int = 400_000) throws {
        var steps = 0
        while !done(self) {
            steps += 1
            guard steps < maxSteps else { throw SwarmError(description: "not done within \(maxSteps) steps, at \(now)") }
            if pending.isEmpty {
                now = now + .milliseconds(500)
                let now = self.now
                for index in nodes.indices {
                    pending += withEngine(index, { $0.tick(now: now).map(Self.step) }, { $0.tick(now: now).map(Self.step) })
                        .map { (index, $0) }
                }
                continue
            }
            let (index, step) = pending.removeFirst()
            execute(step, at: index)
        }
    }

    private static func step(_ action: MagnetStateMachine.Action) -> Step {
        switch action {
        case .connect(let key, let address): .connect(key, address)
        case .send(let key, let bytes): .send(key, bytes)
        case .close(let key): .close(key)
        case .ban(let address): .ban(address)
        case .metadata(let bytes, let peers): .metadata(bytes, peers: peers)
        }
    }

    private static func step(_ action: TorrentAction) -> Step {
        switch action {
        case .connect(let key, let address): .connect(key, address)
        case .send(let key, let bytes): .send(key, bytes)
        case .close(let key): .close(key)
        case .ban(let address): .ban(address)
        case .write(let block, let data): .write(block, data)
        case .read(let key, let block): .read(key, block)
        case .notifySent(let key, let block): .sent(key, block)
        case .hash(let piece): .hash(piece)
        case .verified(let piece): .verified(piece)
        case .completed: .other
        }
    }

    /// Runs an event on a node's engine, whichever it is.
    private mutating func withEngine(
        _ index: Int, _ magnet: (inout MagnetStateMachine) -> [Step], _ torrent: (inout TorrentStateMachine) -> [Step]
    ) -> [Step] {
        switch nodes[index].engine {
        case .magnet(var machine):
            let steps = magnet(&machine)
            nodes[index].engine = .magnet(machine)
            return steps
        case .torrent(var machine):
            let steps = torrent(&machine)
            nodes[index].engine = .torrent(machine)
            return steps
        }
    }

    private mutating func accept(at target: Int, from address: PeerAddress) -> PeerKey? {
        switch nodes[target].engine {
        case .magnet(var machine):
            let key = machine.accepted(from: address, now: now)
            nodes[target].engine = .magnet(machine)
            return key
        case .torrent(var machine):
            let key = machine.accepted(from: address, now: now)
            nodes[target].engine = .torrent(machine)
            return key
        }
    }

    private mutating func execute(_ step: Step, at index: Int) {
        let now = self.now
        var results: [Step] = []
        switch step {
        case .connect(let key, let address):
            nodes[index].dialled.append(address)
            guard let target = nodes.firstIndex(where: { $0.address == address }),
                let remoteKey = accept(at: target, from: nodes[index].address)
            else {
                results = withEngine(
                    index, { $0.connectionFailed(key, now: now).map(Self.step) },
                    { $0.connectionFailed(key, now: now).map(Self.step) })
                break
            }
            links[End(node: index, key: key)] = End(node: target, key: remoteKey)
            links[End(node: target, key: remoteKey)] = End(node: index, key: key)
            results = withEngine(
                index, { $0.connectionEstablished(key, now: now).map(Self.step) },
                { $0.connectionEstablished(key, now: now).map(Self.step) })
        case .send(let key, var bytes):
            guard let remote = links[End(node: index, key: key)] else { break }
            let answers = withEngine(
                remote.node, { $0.received(&bytes, from: remote.key, now: now).map(Self.step) },
                { $0.received(&bytes, from: remote.key, now: now).map(Self.step) })
            pending += answers.map { (remote.node, $0) }
        case .close(let key):
            guard let remote = links.removeValue(forKey: End(node: index, key: key)) else { break }
            links[remote] = nil
            let answers = withEngine(
                remote.node, { $0.connectionClosed(remote.key, now: now).map(Self.step) },
                { $0.connectionClosed(remote.key, now: now).map(Self.step) })
            pending += answers.map { (remote.node, $0) }
        case .ban(let address):
            nodes[index].banned.insert(address)
        case .write(let block, var data):
            let bytes = data.readBytes(length: data.readableBytes) ?? []
            let start = block.piece * content.geometry.pieceLength + block.offset
            nodes[index].data.replaceSubrange(start..<(start + bytes.count), with: bytes)
            results = withEngine(index, { _ in [] }, { $0.blockWritten(block, now: now).map(Self.step) })
        case .read(let key, let block):
            let start = block.piece * content.geometry.pieceLength + block.offset
            let buffer = ByteBuffer(bytes: nodes[index].data[start..<(start + block.length)])
            results = withEngine(index, { _ in [] }, { $0.blockRead(block, data: buffer, for: key, now: now).map(Self.step) })
        case .sent(let key, let block):
            // Delivered sends are written at once in memory: the upload slot frees immediately.
            results = withEngine(index, { _ in [] }, { $0.blockSent(block, to: key, now: now).map(Self.step) })
        case .hash(let piece):
            let start = piece * content.geometry.pieceLength
            let slice = nodes[index].data[start..<(start + content.geometry.length(ofPiece: piece))]
            results = withEngine(
                index, { _ in [] }, { $0.pieceHashed(piece, digest: Content.sha1(slice), now: now).map(Self.step) })
        case .verified(let piece):
            nodes[index].verified.insert(piece)
        case .metadata(let bytes, let peers):
            // The runtime's part: the closes came first; make the torrent and dial the peers carried over.
            let metainfo = try! Metainfo(infoDictionary: bytes, magnetLink: content.magnetLink)
            nodes[index].fetchedInfo = bytes
            nodes[index].carried = peers
            var machine = TorrentStateMachine(
                configuration: torrentConfiguration(index, metainfo: metainfo),
                have: Bitfield(count: metainfo.info.pieceCount))
            results = machine.addPeers(peers, source: .manual, now: now).map(Self.step)
            nodes[index].engine = .torrent(machine)
        case .other:
            break
        }
        pending += results.map { (index, $0) }
    }
}
