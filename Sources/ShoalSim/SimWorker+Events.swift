import NIOCore
import ShoalCore
import ShoalSwarm

extension SimWorker {
    func handle(_ entry: Entry) {
        now = entry.time
        eventsProcessed += 1
        let nodeIndex = entry.event.node
        let node = nodes[nodeIndex]
        origin = node
        originIndex = nodeIndex
        switch entry.event {
        case .join:
            join(nodeIndex)
        case .leave:
            leave(nodeIndex)
        case .announce:
            announce(nodeIndex)
        case .found(_, let peers):
            guard node.online, !peers.isEmpty else { return }
            execute(node.machine.addPeers(peers.map(Simulation.address(ofNode:)), source: .tracker, now: now), on: nodeIndex)
            wake(nodeIndex)
        case .tick:
            guard node.online, node.nextTick == now else { return }
            node.nextTick = nil
            let actions = node.machine.tick(now: now)
            execute(actions, on: nodeIndex)
            scheduleTick(nodeIndex)
        case .uplinkDone(_, let version):
            guard node.uplinkVersion == version else { return }
            uplinkDone(nodeIndex)
        case .deliver(_, let key, let chunk, let arrival, let queued):
            deliver(chunk, to: key, of: nodeIndex, arrival: arrival, queued: queued)
        case .sent(_, let key, let block):
            guard node.online else { return }
            execute(node.machine.blockSent(block, to: key, now: now), on: nodeIndex)
        case .arrive(_, let from, let key, let address):
            arrive(at: nodeIndex, from: from, key: key, address: address)
        case .established(_, let key, let peer, let peerKey):
            established(nodeIndex, key: key, peer: peer, peerKey: peerKey)
        case .refused(_, let key):
            guard node.online else { return }
            node.setEnd(nil, of: key)
            execute(node.machine.connectionFailed(key, now: now), on: nodeIndex)
            wake(nodeIndex)
        case .closed(_, let key):
            peerClosed(nodeIndex, key: key)
        case .disk(_, let results):
            guard node.online else { return }
            var actions: [TorrentAction] = []
            for result in results {
                switch result {
                case .written(let block):
                    actions += node.machine.blockWritten(block, now: now)
                case .hashed(let piece, let digest):
                    actions += node.machine.pieceHashed(piece, digest: digest, now: now)
                case .read(let key, let block, let data):
                    actions += node.machine.blockRead(block, data: data, for: key, now: now)
                }
            }
            execute(actions, on: nodeIndex)
        case .listed, .unlisted, .lookup, .call:
            break
        }
    }

    // MARK: - Joining and leaving

    private func join(_ index: Int) {
        let node = nodes[index]
        guard !node.online, node.report.leftAt == nil else { return }
        node.online = true
        node.report.joinedAt = now
        if node.spec.announces { post(.listed(node: index), at: now + Self.directoryDelay(node.link)) }
        announce(index)
        wake(index)
    }

    private func leave(_ index: Int) {
        let node = nodes[index]
        guard node.online else { return }
        node.online = false
        node.report.leftAt = now
        if node.spec.announces { post(.unlisted(node: index), at: now + Self.directoryDelay(node.link)) }
        for end in node.ends.compactMap({ $0 }) { closeEnd(end, of: index) }
        node.ends = []
        node.flows = []
        node.uplinkVersion += 1
        node.nextTick = nil
    }

    /// The peer learns again the peers it was told of (an engine forgets a peer it failed to reach several
    /// times; a tracker's answers bring it back the same way), and asks the directory for others: the answer
    /// comes back a round trip later.
    private func announce(_ index: Int) {
        let node = nodes[index]
        let spec = node.spec
        guard node.online, spec.announces || !spec.knownPeers.isEmpty else { return }
        if !spec.knownPeers.isEmpty {
            let addresses = spec.knownPeers.map { Simulation.address(ofNode: $0.index) }
            execute(node.machine.addPeers(addresses, source: .tracker, now: now), on: index)
            wake(index)
        }
        if spec.announces { post(.lookup(node: index), at: now + Self.directoryDelay(node.link)) }
        if let interval = configuration.reannounceInterval {
            post(.announce(node: index), at: now + interval)
        }
    }

    // MARK: - Time

    /// Ticks a node when its engine next has something to do (``TorrentStateMachine/nextTickDeadline(now:)``:
    /// a wire timer, the rechoke, a dial), but not sooner than `tickInterval` after now; a node with nothing
    /// due sleeps until an event wakes it.
    func scheduleTick(_ index: Int) {
        let node = nodes[index]
        guard node.online, node.nextTick == nil, let next = tickTime(node) else { return }
        node.nextTick = next
        post(.tick(node: index), at: next)
    }

    /// Something happened to a node that may bring its next tick forward (peers learnt, a connection opened
    /// or closed).
    func wake(_ index: Int) {
        let node = nodes[index]
        guard node.online else { return }
        guard let tick = node.nextTick else {
            scheduleTick(index)
            return
        }
        if let next = tickTime(node), next < tick {
            node.nextTick = next
            post(.tick(node: index), at: next)
        }
    }

    private func tickTime(_ node: Simulation.Node) -> Instant? {
        node.nextTickDeadline(now: now).map { max(now + configuration.tickInterval, $0) }
    }

    // MARK: - Carrying out actions

    func execute(_ actions: [TorrentAction], on index: Int) {
        let node = nodes[index]
        guard node.online else { return }
        var disk: [Simulation.DiskResult] = []
        var closedAny = false
        // Buffers written one after the other to one connection (a block message's head and its data) go
        // out together, as from a socket's send buffer: a head sent alone crossed the network as a control
        // message of its own, an event more per block.
        var writing: (key: PeerKey, chunk: Simulation.Chunk)?
        for action in actions {
            if case .send(let key, let bytes) = action {
                if writing?.key == key {
                    writing!.chunk.rest.append(bytes)
                } else {
                    if let (key, chunk) = writing { send(chunk, from: index, key: key) }
                    writing = (key, Simulation.Chunk(first: bytes))
                }
                continue
            }
            if let (key, chunk) = writing {
                send(chunk, from: index, key: key)
                writing = nil
            }
            switch action {
            case .connect(let key, let address):
                connect(from: index, key: key, to: address)
            case .send:
                break
            case .close(let key):
                guard let end = node.end(of: key) else { continue }
                node.setEnd(nil, of: key)
                closeEnd(end, of: index)
                closedAny = true
            case .ban(let address):
                node.report.bans.append(address)
            case .write(let block, let data):
                node.storage.write(block, data: data)
                disk.append(.written(block))
            case .read(let key, let block):
                disk.append(.read(key, block, node.storage.read(block)))
            case .notifySent(let key, let block):
                guard let end = node.end(of: key), end.open else { continue }
                if end.leftBytes >= end.writtenBytes {
                    post(.sent(node: index, key: key, block), at: now)
                } else {
                    end.sentMarkers.append((end.writtenBytes, block))
                }
            case .hash(let piece):
                disk.append(.hashed(piece: piece, node.storage.hash(piece: piece)))
            case .verified:
                break
            case .completed:
                guard node.report.finishedAt == nil else { continue }
                node.report.finishedAt = now
                finishedCount += 1
                if node.spec.leavesWhenFinished { post(.leave(node: index), at: now) }
            }
        }
        if let (key, chunk) = writing { send(chunk, from: index, key: key) }
        if !disk.isEmpty { post(.disk(node: index, disk), at: now + configuration.diskLatency) }
        if closedAny { wake(index) }
    }
}
