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
        let connection = connections.count
        let port = nodes[node].nextPort
        nodes[node].nextPort = port == .max ? 49152 : port + 1
        let dialler = PeerAddress(host: nodes[node].address.host, port: port)
        connections.append(
            Connection(
                dialler: .init(node: node, key: key, address: dialler), listener: .init(node: target, key: nil, address: address)))
        nodes[node].setEnd(ConnectionEnd(connection: connection, side: 0), of: key)
        queue.schedule(.arrive(connection: connection), at: now + delay(from: node, to: target))
    }

    /// The dial reaches the listener. A node that is gone refuses (a reset comes back); otherwise the
    /// kernel answers at once and the engine then accepts or closes.
    func arrive(_ connection: Int) {
        guard connections[connection]?.dialler.open == true, let key = connections[connection]?.dialler.key else {
            connections[connection] = nil
            return
        }
        let dialler = connections[connection]!.dialler.node
        let target = connections[connection]!.listener.node
        let back = now + delay(from: target, to: dialler)
        guard nodes[target].online else {
            connections[connection] = nil
            queue.schedule(.refused(node: dialler, key: key), at: back)
            return
        }
        queue.schedule(.established(connection: connection), at: back)
        guard let accepted = nodes[target].machine.accepted(from: connections[connection]!.dialler.address, now: now)
        else {
            connections[connection]!.listener.open = false
            queue.schedule(.closed(connection: connection, side: 0), at: back)
            return
        }
        connections[connection]!.listener.key = accepted
        nodes[target].setEnd(ConnectionEnd(connection: connection, side: 1), of: accepted)
        wake(target)
    }

    /// This end closes: what it had not sent is dropped (as NIO's close drops pending writes), and the
    /// other end learns of it one way later, after the chunks already under way.
    func closeEnd(_ connection: Int, side: Int) {
        guard connections[connection]?[side].open == true else { return }
        let node = shut(ConnectionEnd(connection: connection, side: side))
        let other = connections[connection]![1 - side]
        if other.open {
            let notice = max(now + delay(from: node, to: other.node), other.lastDelivery)
            queue.schedule(.closed(connection: connection, side: 1 - side), at: notice)
        } else {
            connections[connection] = nil
        }
    }

    /// The other end closed.
    func peerClosed(_ connection: Int, side: Int) {
        guard connections[connection]?[side].open == true else { return }
        let node = shut(ConnectionEnd(connection: connection, side: side))
        let key = connections[connection]![side].key
        if !connections[connection]![1 - side].open { connections[connection] = nil }
        guard nodes[node].online, let key, nodes[node].end(of: key) != nil else { return }
        nodes[node].setEnd(nil, of: key)
        execute(nodes[node].machine.connectionClosed(key, now: now), on: node)
        wake(node)
    }

    /// Marks an end closed and drops what it had not sent; returns its node.
    private func shut(_ end: ConnectionEnd) -> Int {
        connections[end.connection]![end.side].open = false
        connections[end.connection]![end.side].outbound = []
        connections[end.connection]![end.side].sentMarkers = []
        let node = connections[end.connection]![end.side].node
        dropFlows(of: end, on: node)
        return node
    }

    // MARK: - Moving bytes

    /// Bytes the engine wrote to a connection: they wait for the node's upload link. A control message
    /// (at most ``Configuration/controlMessageLimit`` bytes: a `have`, a few requests) on a connection with
    /// nothing waiting goes straight on to the network, taking no share of the link: its bytes are a
    /// rounding error beside the blocks, and most messages of a large swarm are `have`s, which would
    /// otherwise cost two events each.
    func send(_ bytes: Chunk, from node: Int, key: PeerKey) {
        let size = bytes.readableBytes
        guard let end = nodes[node].end(of: key), let connection = connections[end.connection], size > 0 else { return }
        let ours = connection[end.side]
        guard ours.open else { return }
        let sending = ours.sending
        ours.writtenBytes += Int64(size)
        if !sending && size <= configuration.controlMessageLimit {
            transmit(bytes, over: end, from: node)
            return
        }
        if bytes.first.readableBytes > 0 { ours.outbound.append(bytes.first) }
        for buffer in bytes.rest where buffer.readableBytes > 0 { ours.outbound.append(buffer) }
        guard !sending else { return }
        advanceUplink(node)
        startChunk(end, on: node)
        scheduleUplink(node)
    }

    /// Puts the end's next chunk (what it wrote, up to `chunkSize` bytes) on the node's upload link. Only a
    /// buffer longer than the room left is cut.
    private func startChunk(_ end: ConnectionEnd, on node: Int) {
        guard connections[end.connection] != nil else { return }
        var chunk: Chunk?
        var size = 0
        while size < configuration.chunkSize, var next = connections[end.connection]![end.side].outbound.popFirst() {
            let room = configuration.chunkSize - size
            if next.readableBytes > room {
                let head = next.readSlice(length: room)!
                connections[end.connection]![end.side].outbound.prepend(next)
                next = head
            }
            size += next.readableBytes
            if chunk == nil { chunk = Chunk(first: next) } else { chunk!.rest.append(next) }
        }
        connections[end.connection]![end.side].sending = size > 0
        guard let chunk, size > 0 else { return }
        nodes[node].flows.append(Flow(end: end, chunk: chunk, remaining: Double(size)))
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
        let sender = nodes[node]
        sender.uplinkVersion &+= 1
        let count = sender.flows.count
        guard count > 0 else { return }
        // By index: `flows.lazy.map(\.remaining)` copied every flow, its chunk's buffers retained and released.
        var least = Double.infinity
        for index in 0..<count { least = min(least, sender.flows[index].remaining) }
        let wait = SimLink.transmissionTime(Int(max(0, least).rounded(.up)) * count, rate: sender.link.upload)
        queue.schedule(.uplinkDone(node: node, version: sender.uplinkVersion), at: now + wait)
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
            connections[end.connection]![end.side].sending = false
            transmit(flow.chunk, over: end, from: node)
            if connections[end.connection]?[end.side].outbound.isEmpty == false { startChunk(end, on: node) }
        }
        scheduleUplink(node)
    }

    /// Bytes that left the node's upload link: they cross the network and the receiver's download link,
    /// behind what that link already has to take in, and after what the connection delivered before.
    private func transmit(_ bytes: Chunk, over end: ConnectionEnd, from node: Int) {
        nodes[node].report.bytesSent += Int64(bytes.readableBytes)
        if connections[end.connection] != nil {
            connections[end.connection]![end.side].leftBytes += Int64(bytes.readableBytes)
            let left = connections[end.connection]![end.side].leftBytes
            while let marker = connections[end.connection]![end.side].sentMarkers.first, marker.bytes <= left,
                let key = connections[end.connection]![end.side].key
            {
                connections[end.connection]![end.side].sentMarkers.removeFirst()
                queue.schedule(.sent(node: node, key: key, marker.block), at: now)
            }
        }
        let other = 1 - end.side
        guard connections[end.connection]?[end.side].open == true, connections[end.connection]![other].open else {
            return
        }
        let receiver = connections[end.connection]![other].node
        let arrival = now + delay(from: node, to: receiver)
        var deliverAt =
            max(arrival, nodes[receiver].downlinkFreeAt)
            + SimLink.transmissionTime(bytes.readableBytes, rate: nodes[receiver].link.download)
        nodes[receiver].downlinkFreeAt = deliverAt
        deliverAt = max(deliverAt, connections[end.connection]![other].lastDelivery)
        connections[end.connection]![other].lastDelivery = deliverAt
        queue.schedule(.deliver(connection: end.connection, side: other, bytes), at: deliverAt)
    }
}
