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
            nodes[node].connections[key] = -1
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
        let end = state.ends[side]
        if !state.ends[1 - side].open { connections[connection] = nil } else { connections[connection] = state }
        guard nodes[end.node].online, let key = end.key, nodes[end.node].connections.removeValue(forKey: key) != nil
        else { return }
        execute(nodes[end.node].machine.connectionClosed(key, now: now), on: end.node)
    }

    // MARK: - Moving bytes

    /// Bytes the engine wrote to a connection: they wait for the node's upload link.
    func send(_ bytes: ByteBuffer, from node: Int, key: PeerKey) {
        guard let connection = nodes[node].connections[key], connection >= 0, var state = connections[connection],
            let side = state.ends.firstIndex(where: { $0.node == node && $0.key == key }), state.ends[side].open,
            bytes.readableBytes > 0
        else { return }
        state.ends[side].outbound.append(bytes)
        let wasQueued = state.ends[side].queued
        state.ends[side].queued = true
        connections[connection] = state
        if !wasQueued { nodes[node].sendQueue.append(ConnectionEnd(connection: connection, side: side)) }
        if nodes[node].sending == nil { startSending(node) }
    }

    /// Puts the next chunk on the node's upload link, taking connections in turn.
    private func startSending(_ node: Int) {
        while let end = nodes[node].sendQueue.popFirst() {
            guard var state = connections[end.connection] else { continue }
            state.ends[end.side].queued = false
            guard state.ends[end.side].open, state.ends[1 - end.side].open else {
                connections[end.connection] = state
                continue
            }
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
            if !state.ends[end.side].outbound.isEmpty {
                state.ends[end.side].queued = true
                nodes[node].sendQueue.append(end)
            }
            connections[end.connection] = state
            guard chunk.readableBytes > 0 else { continue }
            nodes[node].sending = (end, chunk)
            nodes[node].report.bytesSent += Int64(chunk.readableBytes)
            queue.schedule(
                .uplinkDone(node: node), at: now + SimLink.transmissionTime(chunk.readableBytes, rate: nodes[node].link.upload))
            return
        }
    }

    /// The chunk has left the node: it crosses the network and the receiver's download link, behind what
    /// that link already has to take in, and after what the connection delivered before.
    func uplinkDone(_ node: Int) {
        guard let (end, chunk) = nodes[node].sending else { return }
        nodes[node].sending = nil
        if nodes[node].online, let state = connections[end.connection], state.ends[end.side].open,
            state.ends[1 - end.side].open
        {
            let receiver = state.ends[1 - end.side].node
            let arrival = now + delay(from: node, to: receiver)
            var deliverAt =
                max(arrival, nodes[receiver].downlinkFreeAt)
                + SimLink.transmissionTime(chunk.readableBytes, rate: nodes[receiver].link.download)
            nodes[receiver].downlinkFreeAt = deliverAt
            deliverAt = max(deliverAt, state.ends[1 - end.side].lastDelivery)
            connections[end.connection]!.ends[1 - end.side].lastDelivery = deliverAt
            queue.schedule(.deliver(connection: end.connection, side: 1 - end.side, chunk), at: deliverAt)
        }
        if nodes[node].online { startSending(node) }
    }
}
