import NIOCore
import ShoalCore
import ShoalSwarm

extension Simulation {
    func handle(_ event: Event) {
        switch event {
        case .join(let node):
            join(node)
        case .leave(let node):
            leave(node)
        case .announce(let node):
            announce(node)
        case .tick(let node):
            guard nodes[node].online, nodes[node].nextTick == now else { return }
            nodes[node].nextTick = nil
            let actions = nodes[node].machine.tick(now: now)
            execute(actions, on: node)
            scheduleTick(node)
        case .uplinkDone(let node, let version):
            guard nodes[node].uplinkVersion == version else { return }
            uplinkDone(node)
        case .deliver(let connection, let side, let chunk):
            guard connections[connection]?[side].open == true, let key = connections[connection]![side].key else {
                return
            }
            let node = connections[connection]![side].node
            nodes[node].report.bytesReceived += Int64(chunk.readableBytes)
            var actions: [TorrentAction] = []
            var bytes = chunk.first
            nodes[node].machine.received(&bytes, from: key, now: now, into: &actions)
            for var part in chunk.rest {
                nodes[node].machine.received(&part, from: key, now: now, into: &actions)
            }
            execute(actions, on: node)
        case .sent(let node, let key, let block):
            guard nodes[node].online else { return }
            execute(nodes[node].machine.blockSent(block, to: key, now: now), on: node)
        case .arrive(let connection):
            arrive(connection)
        case .established(let connection):
            guard connections[connection]?.dialler.open == true, let key = connections[connection]!.dialler.key else {
                return
            }
            let node = connections[connection]!.dialler.node
            guard nodes[node].online else { return }
            let actions = nodes[node].machine.connectionEstablished(key, now: now)
            execute(actions, on: node)
            wake(node)
        case .refused(let node, let key):
            guard nodes[node].online else { return }
            nodes[node].setEnd(nil, of: key)
            execute(nodes[node].machine.connectionFailed(key, now: now), on: node)
            wake(node)
        case .closed(let connection, let side):
            peerClosed(connection, side: side)
        case .disk(let node, let results):
            guard nodes[node].online else { return }
            var actions: [TorrentAction] = []
            for result in results {
                switch result {
                case .written(let block):
                    actions += nodes[node].machine.blockWritten(block, now: now)
                case .hashed(let piece, let digest):
                    actions += nodes[node].machine.pieceHashed(piece, digest: digest, now: now)
                case .read(let key, let block, let data):
                    actions += nodes[node].machine.blockRead(block, data: data, for: key, now: now)
                }
            }
            execute(actions, on: node)
        case .call(let id):
            calls.removeValue(forKey: id)?(self)
        }
    }

    // MARK: - Joining and leaving

    private func join(_ node: Int) {
        guard !nodes[node].online, nodes[node].report.leftAt == nil else { return }
        nodes[node].online = true
        nodes[node].report.joinedAt = now
        announce(node)
        if nodes[node].spec.announces { directory.insert(node) }
        wake(node)
    }

    private func leave(_ node: Int) {
        guard nodes[node].online else { return }
        nodes[node].online = false
        nodes[node].report.leftAt = now
        directory.remove(node)
        for end in nodes[node].ends.compactMap({ $0 }) { closeEnd(end.connection, side: end.side) }
        nodes[node].ends = []
        nodes[node].flows = []
        nodes[node].uplinkVersion += 1
        nodes[node].nextTick = nil
    }

    /// The peer asks the directory for others, and learns again the peers it was told of (an engine
    /// forgets a peer it failed to reach several times; a tracker's answers bring it back the same way).
    private func announce(_ node: Int) {
        let spec = nodes[node].spec
        guard nodes[node].online, spec.announces || !spec.knownPeers.isEmpty else { return }
        var addresses = spec.knownPeers.map { Self.address(ofNode: $0.index) }
        if spec.announces {
            let others = directory.sample(configuration.announceWant, excluding: node, using: &random)
            addresses += others.map { nodes[$0].address }
        }
        if !addresses.isEmpty {
            execute(nodes[node].machine.addPeers(addresses, source: .tracker, now: now), on: node)
            wake(node)
        }
        if let interval = configuration.reannounceInterval {
            queue.schedule(.announce(node: node), at: now + interval)
        }
    }

    // MARK: - Time

    /// Ticks a node when its engine next has something to do (``TorrentStateMachine/nextTickDeadline(now:)``:
    /// a wire timer, the rechoke, a dial), but not sooner than `tickInterval` after now; a node with nothing
    /// due sleeps until an event wakes it.
    func scheduleTick(_ node: Int) {
        guard nodes[node].online, nodes[node].nextTick == nil, let next = tickTime(node) else { return }
        nodes[node].nextTick = next
        queue.schedule(.tick(node: node), at: next)
    }

    /// Something happened to a node that may bring its next tick forward (peers learnt, a connection opened
    /// or closed).
    func wake(_ node: Int) {
        guard nodes[node].online else { return }
        guard let tick = nodes[node].nextTick else {
            scheduleTick(node)
            return
        }
        if let next = tickTime(node), next < tick {
            nodes[node].nextTick = next
            queue.schedule(.tick(node: node), at: next)
        }
    }

    private func tickTime(_ node: Int) -> Instant? {
        nodes[node].nextTickDeadline(now: now).map { max(now + configuration.tickInterval, $0) }
    }

    // MARK: - Carrying out actions

    func execute(_ actions: [TorrentAction], on node: Int) {
        guard nodes[node].online else { return }
        var disk: [DiskResult] = []
        var closedAny = false
        // Buffers written one after the other to one connection (a block message's head and its data) go
        // out together, as from a socket's send buffer: a head sent alone crossed the network as a control
        // message of its own, an event more per block.
        var writing: (key: PeerKey, chunk: Chunk)?
        for action in actions {
            if case .send(let key, let bytes) = action {
                if writing?.key == key {
                    writing!.chunk.rest.append(bytes)
                } else {
                    if let (key, chunk) = writing { send(chunk, from: node, key: key) }
                    writing = (key, Chunk(first: bytes))
                }
                continue
            }
            if let (key, chunk) = writing {
                send(chunk, from: node, key: key)
                writing = nil
            }
            switch action {
            case .connect(let key, let address):
                connect(from: node, key: key, to: address)
            case .send:
                break
            case .close(let key):
                guard let end = nodes[node].end(of: key) else { continue }
                nodes[node].setEnd(nil, of: key)
                closeEnd(end.connection, side: end.side)
                closedAny = true
            case .ban(let address):
                nodes[node].report.bans.append(address)
            case .write(let block, let data):
                nodes[node].storage.write(block, data: data)
                disk.append(.written(block))
            case .read(let key, let block):
                disk.append(.read(key, block, nodes[node].storage.read(block)))
            case .notifySent(let key, let block):
                guard let end = nodes[node].end(of: key), connections[end.connection]?[end.side].open == true else {
                    continue
                }
                let written = connections[end.connection]![end.side].writtenBytes
                if connections[end.connection]![end.side].leftBytes >= written {
                    queue.schedule(.sent(node: node, key: key, block), at: now)
                } else {
                    connections[end.connection]![end.side].sentMarkers.append((written, block))
                }
            case .hash(let piece):
                disk.append(.hashed(piece: piece, nodes[node].storage.hash(piece: piece)))
            case .verified:
                break
            case .completed:
                guard nodes[node].report.finishedAt == nil else { continue }
                nodes[node].report.finishedAt = now
                finishedCount += 1
                if nodes[node].spec.leavesWhenFinished { queue.schedule(.leave(node: node), at: now) }
            }
        }
        if let (key, chunk) = writing { send(chunk, from: node, key: key) }
        if !disk.isEmpty { queue.schedule(.disk(node: node, disk), at: now + configuration.diskLatency) }
        if closedAny { wake(node) }
    }
}
