import NIOCore
import ShoalCore
import ShoalSwarm

extension SimWorker {
    typealias End = Simulation.End
    typealias Chunk = Simulation.Chunk

    // MARK: - Connections

    /// A dial: it reaches the other node one way later, which answers (or refuses) one way after that.
    func connect(from index: Int, key: PeerKey, to address: PeerAddress) {
        guard let target = Simulation.node(at: address, count: nodes.count), target != index else {
            // Nobody listens there: the dial times out as NIO's connect would (10 s).
            post(.refused(node: index, key: key), at: now + .seconds(10))
            return
        }
        let node = nodes[index]
        let port = node.nextPort
        node.nextPort = port == .max ? 49152 : port + 1
        let end = End(key: key, peer: target, peerKey: nil)
        node.setEnd(end, of: key)
        end.lastDue = now + delay(from: index, to: target)
        post(
            .arrive(node: target, from: index, key: key, address: PeerAddress(host: node.address.host, port: port)),
            at: end.lastDue)
    }

    /// The dial reaches the listener. A node that is gone refuses (a reset comes back); otherwise the
    /// kernel answers at once and the engine then accepts or closes.
    func arrive(at index: Int, from dialler: Int, key: PeerKey, address: PeerAddress) {
        let node = nodes[index]
        let back = now + delay(from: index, to: dialler)
        guard node.online else {
            post(.refused(node: dialler, key: key), at: back)
            return
        }
        guard let accepted = node.machine.accepted(from: address, now: now) else {
            post(.established(node: dialler, key: key, peer: index, peerKey: nil), at: back)
            post(.closed(node: dialler, key: key), at: back)
            return
        }
        let end = End(key: accepted, peer: dialler, peerKey: key)
        end.lastDue = back
        node.setEnd(end, of: accepted)
        post(.established(node: dialler, key: key, peer: index, peerKey: accepted), at: back)
        wake(index)
    }

    /// The dialler learns its dial was answered. If it closed the dial meanwhile (or left), it closes the
    /// answered connection, as a reset would.
    func established(_ index: Int, key: PeerKey, peer: Int, peerKey: PeerKey?) {
        let node = nodes[index]
        guard node.online, let end = node.end(of: key), end.open else {
            if let peerKey { post(.closed(node: peer, key: peerKey), at: now + delay(from: index, to: peer)) }
            return
        }
        end.peerKey = peerKey  // nil: the engine there closed it at once, and the notice follows
        execute(node.machine.connectionEstablished(key, now: now), on: index)
        wake(index)
    }

    /// This end closes: what it had not sent is dropped (as NIO's close drops pending writes), and the
    /// other end learns of it one way later, after the chunks already under way.
    func closeEnd(_ end: End, of index: Int) {
        guard end.open else { return }
        shut(end, of: index)
        guard let peerKey = end.peerKey else { return }  // a dial not yet answered: the answer is closed
        end.lastDue = max(now + delay(from: index, to: end.peer), end.lastDue)
        post(.closed(node: end.peer, key: peerKey), at: end.lastDue)
    }

    /// The other end closed (once the chunks it sent before are in).
    func peerClosed(_ index: Int, key: PeerKey) {
        let node = nodes[index]
        guard node.online, let end = node.end(of: key), end.open else { return }
        guard end.queued == 0 else {
            post(.closed(node: index, key: key), at: end.lastDelivery)
            return
        }
        shut(end, of: index)
        node.setEnd(nil, of: key)
        execute(node.machine.connectionClosed(key, now: now), on: index)
        wake(index)
    }

    /// Marks an end closed and drops what it had not sent.
    private func shut(_ end: End, of index: Int) {
        end.open = false
        end.outbound = []
        end.sentMarkers = []
        dropFlows(of: end, on: index)
    }

    // MARK: - Moving bytes

    /// Bytes the engine wrote to a connection: they wait for the node's upload link. A control message
    /// (at most ``Simulation/Configuration/controlMessageLimit`` bytes: a `have`, a few requests) on a
    /// connection with nothing waiting goes straight on to the network, taking no share of the link: its
    /// bytes are a rounding error beside the blocks, and most messages of a large swarm are `have`s, which
    /// would otherwise cost two events each.
    func send(_ bytes: Chunk, from index: Int, key: PeerKey) {
        let size = bytes.readableBytes
        guard let end = nodes[index].end(of: key), end.open, size > 0 else { return }
        let sending = end.sending
        end.writtenBytes += Int64(size)
        if !sending && size <= configuration.controlMessageLimit {
            transmit(bytes, over: end, from: index)
            return
        }
        if bytes.first.readableBytes > 0 { end.outbound.append(bytes.first) }
        for buffer in bytes.rest where buffer.readableBytes > 0 { end.outbound.append(buffer) }
        guard !sending else { return }
        advanceUplink(index)
        startChunk(end, on: index)
        scheduleUplink(index)
    }

    /// Puts the end's next chunk (what it wrote, up to `chunkSize` bytes) on the node's upload link. Only a
    /// buffer longer than the room left is cut.
    private func startChunk(_ end: End, on index: Int) {
        var chunk: Chunk?
        var size = 0
        while size < configuration.chunkSize, var next = end.outbound.popFirst() {
            let room = configuration.chunkSize - size
            if next.readableBytes > room {
                let head = next.readSlice(length: room)!
                end.outbound.prepend(next)
                next = head
            }
            size += next.readableBytes
            if chunk == nil { chunk = Chunk(first: next) } else { chunk!.rest.append(next) }
        }
        end.sending = size > 0
        guard let chunk, size > 0 else { return }
        nodes[index].flows.append(Simulation.Flow(end: end, chunk: chunk, remaining: Double(size)))
    }

    /// Moves every flow on the node's upload link forward to now, each at an equal share of the link.
    private func advanceUplink(_ index: Int) {
        let node = nodes[index]
        let elapsed = (now - node.flowsUpdatedAt).seconds
        node.flowsUpdatedAt = now
        let count = node.flows.count
        guard count > 0, elapsed > 0 else { return }
        let rate = node.link.upload
        let share = rate.isFinite ? rate * elapsed / Double(count) : .infinity
        for flow in node.flows.indices { node.flows[flow].remaining -= share }
    }

    /// Schedules the moment the first flow on the node's upload link finishes.
    private func scheduleUplink(_ index: Int) {
        let sender = nodes[index]
        sender.uplinkVersion &+= 1
        let count = sender.flows.count
        guard count > 0 else { return }
        // By index: `flows.lazy.map(\.remaining)` copied every flow, its chunk's buffers retained and released.
        var least = Double.infinity
        for flow in 0..<count { least = min(least, sender.flows[flow].remaining) }
        let wait = SimLink.transmissionTime(Int(max(0, least).rounded(.up)) * count, rate: sender.link.upload)
        post(.uplinkDone(node: index, version: sender.uplinkVersion), at: now + wait)
    }

    /// Takes a closed end's chunk off the node's upload link.
    private func dropFlows(of end: End, on index: Int) {
        guard nodes[index].flows.contains(where: { $0.end === end }) else { return }
        advanceUplink(index)
        nodes[index].flows.removeAll { $0.end === end }
        scheduleUplink(index)
    }

    /// Chunks have left the node: each crosses the network to the other end.
    func uplinkDone(_ index: Int) {
        advanceUplink(index)
        let node = nodes[index]
        var finished: [Simulation.Flow] = []
        node.flows.removeAll { flow in
            guard flow.remaining < 0.5 else { return false }
            finished.append(flow)
            return true
        }
        for flow in finished {
            let end = flow.end
            end.sending = false
            transmit(flow.chunk, over: end, from: index)
            if !end.outbound.isEmpty { startChunk(end, on: index) }
        }
        scheduleUplink(index)
    }

    /// Bytes that left the node's upload link: they cross the network, and are due at the other end when
    /// the receiver's download link could have taken them in had it been free, after what the connection
    /// sent before. The receiver settles whether its link was free (``deliver(_:to:of:arrival:queued:)``).
    private func transmit(_ bytes: Chunk, over end: End, from index: Int) {
        let size = bytes.readableBytes
        nodes[index].report.bytesSent += Int64(size)
        end.leftBytes += Int64(size)
        while let marker = end.sentMarkers.first, marker.bytes <= end.leftBytes {
            end.sentMarkers.removeFirst()
            post(.sent(node: index, key: end.key, marker.block), at: now)
        }
        guard end.open, let peerKey = end.peerKey else { return }
        let receiver = end.peer
        let arrival = now + delay(from: index, to: receiver)
        let due = max(arrival + SimLink.transmissionTime(size, rate: links[receiver].download), end.lastDue)
        end.lastDue = due
        post(.deliver(node: receiver, key: peerKey, bytes, arrival: arrival, queued: false), at: due)
    }

    /// A chunk for the end `key` of this node. Its download link takes chunks first come, first served in
    /// the order they are due: if the link was free when the chunk reached it, the chunk is in now;
    /// otherwise it waits behind what the link was busy with (an event more). A control message (as on the
    /// upload link) takes no share of the link. A connection's chunks stay in order: one due while an
    /// earlier one waits, waits behind it.
    func deliver(_ chunk: Chunk, to key: PeerKey, of index: Int, arrival: Instant, queued: Bool) {
        let node = nodes[index]
        guard node.online, let end = node.end(of: key), end.open else { return }
        if queued {
            end.queued -= 1
        } else if end.queued > 0 || chunk.readableBytes > configuration.controlMessageLimit {
            let taken = max(arrival, node.downlinkFreeAt) + SimLink.transmissionTime(chunk.readableBytes, rate: node.link.download)
            node.downlinkFreeAt = taken
            let at = max(taken, end.queued > 0 ? end.lastDelivery : now)
            if at > now || end.queued > 0 {
                end.queued += 1
                end.lastDelivery = at
                post(.deliver(node: index, key: key, chunk, arrival: arrival, queued: true), at: at)
                return
            }
        }
        end.lastDelivery = max(end.lastDelivery, now)
        node.report.bytesReceived += Int64(chunk.readableBytes)
        var actions: [TorrentAction] = []
        var bytes = chunk.first
        node.machine.received(&bytes, from: key, now: now, into: &actions)
        for var part in chunk.rest {
            node.machine.received(&part, from: key, now: now, into: &actions)
        }
        execute(actions, on: index)
    }
}
