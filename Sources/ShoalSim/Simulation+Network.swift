import NIOCore
import ShoalCore
import ShoalSwarm

extension Simulation {
    /// One way from `a` to `b`: both access links' latency, plus jitter and, for a lost chunk, a
    /// retransmission timeout.
    private func delay(from a: Int, to b: Int) -> Interval {
        var delay = nodes[a].link.latency + nodes[b].link.latency
        let jitter = max(nodes[a].link.jitter.nanoseconds, nodes[b].link.jitter.nanoseconds)
        if jitter > 0 { delay = delay + .nanoseconds(Int64(random.next() % UInt64(jitter))) }
        let loss = 1 - (1 - nodes[a].link.loss) * (1 - nodes[b].link.loss)
        if loss > 0, Double(random.next() >> 11) / Double(1 << 53) < loss {
            delay = delay + configuration.retransmissionTimeout
        }
        return delay
    }

    // MARK: - Connections

    /// A dial: it reaches the other node one way later, which answers (or refuses) one way after that.
    func connect(from node: Int, key: PeerKey, to address: PeerAddress) {
        guard let target = nodeByAddress[address], target != node else {
            // Nobody listens there: the dial times out as NIO's connect would (10 s).
            queue.schedule(.refused(node: node, key: key), at: now + .seconds(10))
            return
        }
        let connection = nextConnection
        nextConnection += 1
        let port = nodes[node].nextPort
        nodes[node].nextPort = port == .max ? 49152 : port + 1
        let dialler = PeerAddress(host: nodes[node].address.host, port: port)
        connections[connection] = Connection(ends: [
            .init(node: node, key: key, address: dialler), .init(node: target, key: nil, address: address),
        ])
        nodes[node].connections[key] = connection
        queue.schedule(.arrive(connection: connection), at: now + delay(from: node, to: target))
    }

    /// The dial reaches the listener. A node that is gone refuses (a reset comes back); otherwise the
    /// kernel answers at once and the engine then accepts or closes.
    func arrive(_ connection: Int) {
        guard let dialler = connections[connection]?.ends[0], dialler.open, let key = dialler.key else {
            connections[connection] = nil
            return
        }
        let target = connections[connection]!.ends[1].node
        let back = now + delay(from: target, to: dialler.node)
        guard nodes[target].online else {
            connections[connection] = nil
            queue.schedule(.refused(node: dialler.node, key: key), at: back)
            return
        }
        queue.schedule(.established(connection: connection), at: back)
        guard let accepted = nodes[target].machine.accepted(from: dialler.address, now: now) else {
            connections[connection]!.ends[1].open = false
            queue.schedule(.closed(connection: connection, side: 0), at: back)
            return
        }
        connections[connection]!.ends[1].key = accepted
        nodes[target].connections[accepted] = connection
        wake(target)
    }

    /// This end closes: what it had not sent is dropped (as NIO's close drops pending writes), and the
    /// other end learns of it one way later, after the chunks already under way.
    func closeEnd(_ connection: Int, side: Int) {
        guard var state = connections[connection], state.ends[side].open else { return }
        state.ends[side].open = false
        state.ends[side].outbound = []
        dropFlows(of: ConnectionEnd(connection: connection, side: side), on: state.ends[side].node)
        let other = state.ends[1 - side]
        if other.open {
            let notice = max(now + delay(from: state.ends[side].node, to: other.node), other.lastDelivery)
            queue.schedule(.closed(connection: connection, side: 1 - side), at: notice)
            connections[connection] = state
        } else {
            connections[connection] = nil
        }
    }

    /// The other end closed.
    func peerClosed(_ connection: Int, side: Int) {
        guard var state = connections[connection], state.ends[side].open else { return }
        state.ends[side].open = false
        state.ends[side].outbound = []
        dropFlows(of: ConnectionEnd(connection: connection, side: side), on: state.ends[side].node)
        let end = state.ends[side]
        if !state.ends[1 - side].open { connections[connection] = nil } else { connections[connection] = state }
        guard nodes[end.node].online, let key = end.key, nodes[end.node].connections.removeValue(forKey: key) != nil
        else { return }
        execute(nodes[end.node].machine.connectionClosed(key, now: now), on: end.node)
        wake(end.node)
    }

    // MARK: - Moving bytes

    /// Bytes the engine wrote to a connection: they wait for the node's upload link. A control message
    /// (at most ``Configuration/controlMessageLimit`` bytes: a `have`, a few requests) on a connection with
    /// nothing waiting goes straight on to the network, taking no share of the link: its bytes are a
    /// rounding error beside the blocks, and most messages of a large swarm are `have`s, which would
    /// otherwise cost two events each.
    func send(_ bytes: ByteBuffer, from node: Int, key: PeerKey) {
        guard let connection = nodes[node].connections[key],
            let side = connections[connection]?.ends.firstIndex(where: { $0.node == node && $0.key == key }),
            connections[connection]!.ends[side].open, bytes.readableBytes > 0
        else { return }
        if !connections[connection]!.ends[side].sending && bytes.readableBytes <= configuration.controlMessageLimit {
            transmit(bytes, over: ConnectionEnd(connection: connection, side: side), from: node)
            return
        }
        connections[connection]!.ends[side].outbound.append(bytes)
        guard !connections[connection]!.ends[side].sending else { return }
        advanceUplink(node)
        startChunk(ConnectionEnd(connection: connection, side: side), on: node)
        scheduleUplink(node)
    }

    /// Puts the end's next chunk (up to `chunkSize` bytes of what it wrote) on the node's upload link.
    private func startChunk(_ end: ConnectionEnd, on node: Int) {
        guard var state = connections[end.connection] else { return }
        var chunk = ByteBuffer()
        var parts = 0
        var first = ByteBuffer()
        while chunk.readableBytes + first.readableBytes < configuration.chunkSize,
            var next = state.ends[end.side].outbound.popFirst()
        {
            let room = configuration.chunkSize - chunk.readableBytes - first.readableBytes
            if next.readableBytes > room {
                let head = next.readSlice(length: room)!
                state.ends[end.side].outbound.prepend(next)
                next = head
            }
            // One part goes as it is (no copy); a chunk of several is joined into one buffer.
            if parts == 0 {
                first = next
            } else {
                if parts == 1 {
                    chunk.reserveCapacity(configuration.chunkSize)
                    chunk.writeImmutableBuffer(first)
                    first = ByteBuffer()
                }
                chunk.writeImmutableBuffer(next)
            }
            parts += 1
        }
        if parts == 1 { chunk = first }
        state.ends[end.side].sending = chunk.readableBytes > 0
        connections[end.connection] = state
        guard chunk.readableBytes > 0 else { return }
        nodes[node].flows.append(Flow(end: end, chunk: chunk, remaining: Double(chunk.readableBytes)))
    }

    /// Moves every flow on the node's upload link forward to now, each at an equal share of the link.
    private func advanceUplink(_ node: Int) {
        let elapsed = (now - nodes[node].flowsUpdatedAt).seconds
        nodes[node].flowsUpdatedAt = now
        let count = nodes[node].flows.count
        guard count > 0, elapsed > 0 else { return }
        let rate = nodes[node].link.upload
        let share = rate.isFinite ? rate * elapsed / Double(count) : .infinity
        for index in nodes[node].flows.indices { nodes[node].flows[index].remaining -= share }
    }

    /// Schedules the moment the first flow on the node's upload link finishes.
    private func scheduleUplink(_ node: Int) {
        nodes[node].uplinkVersion &+= 1
        guard let least = nodes[node].flows.lazy.map(\.remaining).min() else { return }
        let count = nodes[node].flows.count
        let wait = SimLink.transmissionTime(Int(max(0, least).rounded(.up)) * count, rate: nodes[node].link.upload)
        queue.schedule(.uplinkDone(node: node, version: nodes[node].uplinkVersion), at: now + wait)
    }

    /// Takes a closed end's chunk off the node's upload link.
    func dropFlows(of end: ConnectionEnd, on node: Int) {
        guard nodes[node].flows.contains(where: { $0.end == end }) else { return }
        advanceUplink(node)
        nodes[node].flows.removeAll { $0.end == end }
        scheduleUplink(node)
    }

    /// Chunks have left the node: each crosses the network and the receiver's download link, behind what
    /// that link already has to take in, and after what its connection delivered before.
    func uplinkDone(_ node: Int) {
        advanceUplink(node)
        var finished: [Flow] = []
        nodes[node].flows.removeAll { flow in
            guard flow.remaining < 0.5 else { return false }
            finished.append(flow)
            return true
        }
        for flow in finished {
            let end = flow.end
            guard connections[end.connection] != nil else {
                nodes[node].report.bytesSent += Int64(flow.chunk.readableBytes)
                continue
            }
            connections[end.connection]!.ends[end.side].sending = false
            transmit(flow.chunk, over: end, from: node)
            if connections[end.connection].map({ !$0.ends[end.side].outbound.isEmpty }) ?? false {
                startChunk(end, on: node)
            }
        }
        scheduleUplink(node)
    }

    /// Bytes that left the node's upload link: they cross the network and the receiver's download link,
    /// behind what that link already has to take in, and after what the connection delivered before.
    private func transmit(_ bytes: ByteBuffer, over end: ConnectionEnd, from node: Int) {
        nodes[node].report.bytesSent += Int64(bytes.readableBytes)
        guard let state = connections[end.connection], state.ends[end.side].open, state.ends[1 - end.side].open
        else { return }
        let receiver = state.ends[1 - end.side].node
        let arrival = now + delay(from: node, to: receiver)
        var deliverAt =
            max(arrival, nodes[receiver].downlinkFreeAt)
            + SimLink.transmissionTime(bytes.readableBytes, rate: nodes[receiver].link.download)
        nodes[receiver].downlinkFreeAt = deliverAt
        deliverAt = max(deliverAt, state.ends[1 - end.side].lastDelivery)
        connections[end.connection]!.ends[1 - end.side].lastDelivery = deliverAt
        queue.schedule(.deliver(connection: end.connection, side: 1 - end.side, bytes), at: deliverAt)
    }
}
