import ShoalCore

extension DHTNode {
    // MARK: Events

    /// Joins the DHT: a find_node lookup for our own id in each family (BEP 5, "Routing Table": "the node
    /// should attempt to find the closest nodes in the DHT to itself"), starting from the table, the saved nodes
    /// and the bootstrap addresses. The addresses are kept to join again if the table ever empties.
    public mutating func start(bootstrap: [NodeAddress], now: Instant) -> ([LookupID], [DHTAction]) {
        bootstrapAddresses = Array(bootstrap.prefix(64))
        var actions: [DHTAction] = []
        var started: [LookupID] = []
        for family in configuration.families {
            if let lookup = startLookup(.findNode, target: id, family: family, now: now, into: &actions) {
                started.append(lookup)
            }
        }
        savedNodes = []
        finishEvent(now: now, into: &actions)
        return (started, actions)
    }

    /// Starts a lookup in one family. Returns nil (and no actions) when the lookup limit is reached.
    public mutating func startLookup(
        _ kind: Lookup.Kind, target: NodeID, family: NodeAddress.Family, now: Instant
    ) -> (LookupID?, [DHTAction]) {
        var actions: [DHTAction] = []
        let lookup = startLookup(kind, target: target, family: family, now: now, into: &actions)
        finishEvent(now: now, into: &actions)
        return (lookup, actions)
    }

    /// Starts get_peers lookups for `infoHash` in every family the node runs.
    public mutating func getPeers(_ infoHash: NodeID, now: Instant) -> ([LookupID], [DHTAction]) {
        startInEveryFamily(.getPeers, target: infoHash, now: now)
    }

    /// Starts get_peers lookups for `infoHash`, then announces a peer on `port` (or on the DHT's UDP port
    /// with `impliedPort`) to the closest nodes, in every family the node runs.
    public mutating func announce(
        _ infoHash: NodeID, port: UInt16, impliedPort: Bool = false, now: Instant
    ) -> ([LookupID], [DHTAction]) {
        startInEveryFamily(.announce(port: port, impliedPort: impliedPort), target: infoHash, now: now)
    }

    /// Stops a lookup without a result; its pending queries are forgotten when they end.
    public mutating func cancelLookup(_ lookup: LookupID) {
        lookups[lookup] = nil
    }

    /// Pings a node we heard of (BEP 5 PORT message: "Peers that receive this message should attempt to ping
    /// the node"); it enters the table if it answers.
    public mutating func ping(_ address: NodeAddress, now: Instant) -> [DHTAction] {
        var actions: [DHTAction] = []
        let known = table(address.family).entries.first { $0.address == address }
        sendPing(to: address, expectedID: known?.id, now: now, into: &actions)
        finishEvent(now: now, into: &actions)
        return actions
    }

    /// A datagram arrived from `source`.
    public mutating func received(_ datagram: [UInt8], from source: NodeAddress, now: Instant) -> [DHTAction] {
        statistics.datagramsReceived += 1
        var actions: [DHTAction] = []
        guard source.port != 0, enabled(source.family) else { return actions }
        let message: KRPCMessage
        do {
            message = try KRPCMessage(decoding: datagram, limits: configuration.limits)
        } catch {
            statistics.malformed += 1
            if let transaction = error.replyTransactionID, !configuration.readOnly,
                limiter.allow(source.host, now: now)
            {
                reply(
                    .error(KRPCErrorReply(code: KRPCErrorReply.protocolError, message: "malformed query: \(error.field)")),
                    transaction: transaction, to: source, into: &actions)
            }
            finishEvent(now: now, into: &actions)
            return actions
        }
        switch message.body {
        case .query(let query):
            receivedQuery(query, message: message, from: source, now: now, into: &actions)
        case .response(let response):
            receivedResponse(response, message: message, from: source, now: now, into: &actions)
        case .error:
            receivedError(message: message, from: source, now: now, into: &actions)
        }
        finishEvent(now: now, into: &actions)
        return actions
    }

    /// Time passed: queries time out, lookups move on, buckets are refreshed, the token secret rotates, stored
    /// peers expire.
    public mutating func tick(now: Instant) -> [DHTAction] {
        var actions: [DHTAction] = []
        if let scheduled, scheduled <= now { self.scheduled = nil }
        while let first = softDeadlines.min, first.time <= now {
            softDeadlines.removeMin()
            guard let transaction = transactions[first.transaction], transaction.serial == first.serial,
                case .lookup(let lookupID) = transaction.purpose
            else { continue }
            if lookups[lookupID]?.softTimedOut(transaction.address) == true, let lookup = lookups[lookupID] {
                sendLookupQuery(lookup, to: transaction.address, expectedID: transaction.expectedID, now: now, into: &actions)
            }
            advance(lookupID, now: now, into: &actions)
        }
        while let first = hardDeadlines.first, first.time <= now {
            hardDeadlines.removeFirst()
            guard let transaction = transactions[first.transaction], transaction.serial == first.serial else { continue }
            transactions[first.transaction] = nil
            timedOut(transaction, now: now, into: &actions)
        }
        if now >= nextMaintenance {
            nextMaintenance = now + configuration.maintenanceInterval
            maintain(now: now, into: &actions)
        }
        if now >= nextFill { fillBuckets(now: now, into: &actions) }
        for lookupID in lookups.keys.sorted() { advance(lookupID, now: now, into: &actions) }
        finishEvent(now: now, into: &actions)
        return actions
    }

    // MARK: Queries from others

    private mutating func receivedQuery(
        _ query: KRPCQuery, message: KRPCMessage, from source: NodeAddress, now: Instant, into actions: inout [DHTAction]
    ) {
        // BEP 43: a read-only node answers nothing.
        guard !configuration.readOnly else { return }
        guard limiter.allow(source.host, now: now) else {
            statistics.rateLimited += 1
            return
        }
        guard query.id != id else { return }
        statistics.queriesAnswered += 1
        let family = source.family
        switch query.method {
        case .ping:
            reply(.response(KRPCResponse(id: id)), transaction: message.transactionID, to: source, into: &actions)
        case .findNode(let target, let want):
            var response = KRPCResponse(id: id)
            fillNodes(&response, target: target, want: want, family: family)
            reply(.response(response), transaction: message.transactionID, to: source, into: &actions)
        case .getPeers(let infoHash, let want):
            var response = KRPCResponse(id: id)
            response.token = tokens.token(for: source.host, infoHash: infoHash)
            let values = peerStore.peers(
                for: infoHash, family: family, limit: configuration.maxValuesPerReply, using: &random)
            if !values.isEmpty { response.values = values }
            fillNodes(&response, target: infoHash, want: want, family: family)
            reply(.response(response), transaction: message.transactionID, to: source, into: &actions)
        case .announcePeer(let infoHash, let port, let token, let impliedPort):
            guard tokens.isValid(token, for: source.host, infoHash: infoHash) else {
                statistics.badTokens += 1
                reply(
                    .error(KRPCErrorReply(code: KRPCErrorReply.protocolError, message: "bad token")),
                    transaction: message.transactionID, to: source, into: &actions)
                return
            }
            let peerPort = impliedPort ? source.port : port
            guard peerPort != 0 else {
                reply(
                    .error(KRPCErrorReply(code: KRPCErrorReply.protocolError, message: "port 0")),
                    transaction: message.transactionID, to: source, into: &actions)
                return
            }
            peerStore.announce(NodeAddress(host: source.host, port: peerPort), for: infoHash, now: now)
            reply(.response(KRPCResponse(id: id)), transaction: message.transactionID, to: source, into: &actions)
        case .unknown:
            reply(
                .error(KRPCErrorReply(code: KRPCErrorReply.methodUnknown, message: "method unknown")),
                transaction: message.transactionID, to: source, into: &actions)
        }
        // BEP 43: a read-only querier stays out of our table. Others stay good if known, or are pinged first.
        guard !message.readOnly else { return }
        let node = NodeInfo(id: query.id, address: source)
        let known: Bool
        if family == .ipv4 { known = table4.nodeQueried(node, now: now) } else { known = table6.nodeQueried(node, now: now) }
        if !known && table(family).wouldAccept(query.id, now: now) && admissible(node) {
            sendPing(to: source, expectedID: query.id, now: now, into: &actions)
        }
    }

    /// BEP 5 `nodes` and BEP 32 `nodes6`: the families the requester wants, else the one it asked over.
    private func fillNodes(_ response: inout KRPCResponse, target: NodeID, want: KRPCQuery.Want, family: NodeAddress.Family) {
        let wanted: KRPCQuery.Want = want.isEmpty ? KRPCQuery.Want(family) : want
        let k = configuration.routing.bucketSize
        if wanted.contains(.ipv4) && enabled(.ipv4) { response.nodes = table4.closest(to: target, count: k) }
        if wanted.contains(.ipv6) && enabled(.ipv6) { response.nodes6 = table6.closest(to: target, count: k) }
    }

    private mutating func reply(
        _ body: KRPCMessage.Body, transaction: [UInt8], to destination: NodeAddress, into actions: inout [DHTAction]
    ) {
        // BEP 42: tell the requester its address as we see it.
        let message = KRPCMessage(
            transactionID: transaction, version: configuration.version, requesterAddress: destination, body: body)
        send(message, to: destination, into: &actions)
    }

    // MARK: Answers to our queries

    private mutating func receivedResponse(
        _ response: KRPCResponse, message: KRPCMessage, from source: NodeAddress, now: Instant,
        into actions: inout [DHTAction]
    ) {
        guard let (_, transaction) = takeTransaction(message, from: source) else { return }
        sampleRoundTrip(now - transaction.sentAt)
        if let expected = transaction.expectedID, expected != response.id {
            // Another node answers at that address now: the one we knew is gone.
            failed(transaction, timedOut: false, now: now, into: &actions)
            return
        }
        if let address = message.requesterAddress, address.family == source.family {
            voteExternalAddress(address.host, voter: source.host, now: now, into: &actions)
        }
        let node = NodeInfo(id: response.id, address: source)
        if !message.readOnly && admissible(node) {
            let verified = !source.host.isLocal && response.id.isSecure(for: source.host)
            var insertion = RoutingTable.Insertion.refused
            table(for: source.family) { insertion = $0.nodeResponded(node, verified: verified, now: now) }
            if case .cached(let questionable?) = insertion {
                sendPing(to: questionable.address, expectedID: questionable.id, now: now, into: &actions)
            }
        }
        switch transaction.purpose {
        case .ping:
            break
        case .fill:
            let pinged = learnNamedNodes(
                response.nodes(of: source.family), limit: configuration.routing.bucketSize, now: now, into: &actions)
            if pinged > 0 {
                fillInterval = configuration.bucketFillInterval
                nextFill = min(nextFill, now + fillInterval)
            } else {
                fillInterval = min(configuration.maxBucketFillInterval, fillInterval * 2)
            }
        case .lookup(let lookupID):
            guard var lookup = lookups[lookupID] else { break }
            let family = lookup.family
            let fresh = lookup.responded(
                from: source, id: response.id, nodes: response.nodes(of: family), token: response.token,
                values: response.values ?? [])
            let infoHash = lookup.target
            lookups[lookupID] = lookup
            if !fresh.isEmpty { actions.append(.peersFound(lookupID, infoHash: infoHash, fresh.map(\.peerAddress))) }
            learnNamedNodes(response.nodes(of: family), limit: 2, now: now, into: &actions)
            learnOtherFamily(response, besides: family, now: now, into: &actions)
            advance(lookupID, now: now, into: &actions)
        case .announce(let lookupID):
            lookups[lookupID]?.announceAnswered(success: true)
            advance(lookupID, now: now, into: &actions)
        }
    }

    private mutating func receivedError(
        message: KRPCMessage, from source: NodeAddress, now: Instant, into actions: inout [DHTAction]
    ) {
        guard let (_, transaction) = takeTransaction(message, from: source) else { return }
        failed(transaction, timedOut: false, now: now, into: &actions)
    }

    /// The pending transaction an answer belongs to, removed; nil (and the answer dropped) when there is none
    /// or it was sent to another address.
    private mutating func takeTransaction(_ message: KRPCMessage, from source: NodeAddress) -> (UInt32, Transaction)? {
        guard message.transactionID.count == 4 else {
            statistics.unexpected += 1
            return nil
        }
        let key = message.transactionID.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard let transaction = transactions[key], transaction.address == source else {
            statistics.unexpected += 1
            return nil
        }
        transactions[key] = nil
        return (key, transaction)
    }

    private mutating func timedOut(_ transaction: Transaction, now: Instant, into actions: inout [DHTAction]) {
        statistics.timeouts += 1
        failed(transaction, timedOut: true, now: now, into: &actions)
    }

    /// A query of ours failed: the table counts the failure (BEP 5: a node that fails a ping is tried once
    /// more before it is bad), the lookup moves on.
    private mutating func failed(_ transaction: Transaction, timedOut: Bool, now: Instant, into actions: inout [DHTAction]) {
        if timedOut, let expected = transaction.expectedID {
            var status: RoutingEntry.Status?
            table(for: transaction.address.family) {
                status = $0.nodeFailed(expected, address: transaction.address, now: now)
            }
            if case .ping = transaction.purpose, status == .questionable {
                sendPing(to: transaction.address, expectedID: expected, now: now, into: &actions)
            }
        }
        switch transaction.purpose {
        case .ping, .fill:
            break
        case .lookup(let lookupID):
            lookups[lookupID]?.failed(transaction.address, timedOut: timedOut)
            advance(lookupID, now: now, into: &actions)
        case .announce(let lookupID):
            lookups[lookupID]?.announceAnswered(success: false)
            advance(lookupID, now: now, into: &actions)
        }
    }

    // MARK: Lookups

    private mutating func startInEveryFamily(_ kind: Lookup.Kind, target: NodeID, now: Instant) -> ([LookupID], [DHTAction]) {
        var actions: [DHTAction] = []
        var started: [LookupID] = []
        for family in configuration.families {
            if let lookup = startLookup(kind, target: target, family: family, now: now, into: &actions) {
                started.append(lookup)
            }
        }
        finishEvent(now: now, into: &actions)
        return (started, actions)
    }

    @discardableResult
    mutating func startLookup(
        _ kind: Lookup.Kind, target: NodeID, family: NodeAddress.Family, now: Instant, into actions: inout [DHTAction]
    ) -> LookupID? {
        guard enabled(family), lookups.count < configuration.maxLookups else { return nil }
        let lookupID = LookupID(rawValue: nextLookupID)
        nextLookupID &+= 1
        let known = table(family).closest(to: target, count: configuration.lookup.maxCandidates)
        var bootstrap: [NodeAddress] = []
        var saved: [NodeInfo] = []
        if known.count < configuration.lookup.closestCount {
            saved = savedNodes
            bootstrap = bootstrapAddresses
        }
        lookups[lookupID] = Lookup(
            id: lookupID, kind: kind, target: target, family: family, from: known + saved, bootstrap: bootstrap,
            excluding: id, configuration: configuration.lookup, now: now)
        statistics.lookupsStarted += 1
        advance(lookupID, now: now, into: &actions)
        return lookupID
    }

    /// Sends what a lookup wants sent, moves it to announcing when its search is done, and reports it when it
    /// is finished.
    mutating func advance(_ lookupID: LookupID, now: Instant, into actions: inout [DHTAction]) {
        guard var lookup = lookups[lookupID] else { return }
        let budget = configuration.maxPendingQueries - transactions.count
        let queries = lookup.nextQueries(now: now, budget: budget)
        for query in queries {
            sendLookupQuery(lookup, to: query.address, expectedID: query.id, now: now, into: &actions)
        }
        if lookup.searchDone {
            if case .announce(let port, let impliedPort) = lookup.kind {
                for target in lookup.beginAnnouncing() {
                    let method = KRPCQuery.Method.announcePeer(
                        infoHash: lookup.target, port: port, token: target.token, impliedPort: impliedPort)
                    sendQuery(
                        method, to: target.info.address, expectedID: target.info.id, purpose: .announce(lookupID),
                        now: now, into: &actions)
                }
            } else {
                lookup.finish()
            }
        }
        if lookup.isFinished {
            lookups[lookupID] = nil
            statistics.lookupsFinished += 1
            actions.append(.lookupFinished(lookup.result(now: now)))
        } else {
            lookups[lookupID] = lookup
        }
    }

    /// find_node or get_peers, as the lookup's kind says.
    private mutating func sendLookupQuery(
        _ lookup: Lookup, to address: NodeAddress, expectedID: NodeID?, now: Instant, into actions: inout [DHTAction]
    ) {
        let want = wantFor(lookup.family)
        let method: KRPCQuery.Method =
            lookup.kind == .findNode
            ? .findNode(target: lookup.target, want: want) : .getPeers(infoHash: lookup.target, want: want)
        sendQuery(method, to: address, expectedID: expectedID, purpose: .lookup(lookup.id), now: now, into: &actions)
    }

    /// BEP 32: while the other family's table is nearly empty, ask for both families' nodes ("a dual-stack node
    /// that is bootstrapping ... should request both").
    private func wantFor(_ family: NodeAddress.Family) -> KRPCQuery.Want {
        let other: NodeAddress.Family = family == .ipv4 ? .ipv6 : .ipv4
        guard enabled(other), table(other).count < configuration.routing.bucketSize else { return [] }
        return [.ipv4, .ipv6]
    }

    /// Nodes named in an answer whose bucket has a free place are pinged (a few per answer, while the node has
    /// few queries pending), so that tables fill with nodes heard of, once they prove they answer.
    @discardableResult
    private mutating func learnNamedNodes(_ nodes: [NodeInfo], limit: Int, now: Instant, into actions: inout [DHTAction]) -> Int {
        guard transactions.count < configuration.maxPendingQueries / 2, let family = nodes.first?.address.family else {
            return 0
        }
        let worth = table(family).nodesWorthLearning(nodes.filter { $0.address.family == family && admissible($0) }, limit: limit)
        for node in worth { sendPing(to: node.address, expectedID: node.id, now: now, into: &actions) }
        return worth.count
    }

    /// Nodes of the other family in an answer (we asked for them while that table was nearly empty) are
    /// pinged, a few at a time, to enter it.
    private mutating func learnOtherFamily(
        _ response: KRPCResponse, besides family: NodeAddress.Family, now: Instant, into actions: inout [DHTAction]
    ) {
        let other: NodeAddress.Family = family == .ipv4 ? .ipv6 : .ipv4
        guard enabled(other), table(other).count < configuration.routing.bucketSize else { return }
        for node in response.nodes(of: other).prefix(4) where table(other).wouldAccept(node.id, now: now) {
            sendPing(to: node.address, expectedID: node.id, now: now, into: &actions)
        }
    }

    // MARK: Maintenance

    private mutating func maintain(now: Instant, into actions: inout [DHTAction]) {
        if now - tokens.rotated >= configuration.tokenRotation { tokens.rotate(using: &random, now: now) }
        peerStore.expire(now: now)
        limiter.purge(now: now)
        for family in configuration.families {
            if table(family).count == 0 {
                // Alone: join again through the bootstrap nodes, unless a lookup is at it already.
                if !bootstrapAddresses.isEmpty && !lookups.values.contains(where: { $0.family == family }) {
                    startLookup(.findNode, target: id, family: family, now: now, into: &actions)
                }
                continue
            }
            var generator = random
            let targets =
                family == .ipv4
                ? table4.bucketsToRefresh(now: now, using: &generator)
                : table6.bucketsToRefresh(now: now, using: &generator)
            random = generator
            for target in targets { startLookup(.findNode, target: target, family: family, now: now, into: &actions) }
        }
    }

    /// Fills the farthest bucket that is not full: asks the node we know nearest to a random id in it (as jch's
    /// dht does in its bucket maintenance); the nodes it names that find room are pinged and enter if they
    /// answer. Every `bucketFillInterval` (5 s) while that brings nodes, backing off to `maxBucketFillInterval`
    /// (a minute) while it does not (a node's deepest buckets can never fill; a young DHT grows).
    private mutating func fillBuckets(now: Instant, into actions: inout [DHTAction]) {
        var sent = false
        for family in configuration.families {
            var generator = random
            let target = table(family).fillTarget(using: &generator)
            random = generator
            guard let target, let nearest = table(family).closest(to: target, count: 1).first else { continue }
            sendQuery(
                .findNode(target: target, want: []), to: nearest.address, expectedID: nearest.id, purpose: .fill,
                now: now, into: &actions)
            sent = true
        }
        if !sent { fillInterval = configuration.maxBucketFillInterval }
        nextFill = now + fillInterval
    }

    private mutating func voteExternalAddress(
        _ address: NodeAddress.Host, voter: NodeAddress.Host, now: Instant, into actions: inout [DHTAction]
    ) {
        guard let agreed = votes.vote(by: voter, for: address), agreed != externalAddress else { return }
        externalAddress = agreed
        guard configuration.secureNodeID, !agreed.isLocal, !id.isSecure(for: agreed) else { return }
        // BEP 42: take an id that conforms to our external address; the tables keep their nodes.
        let newID = NodeID.secure(for: agreed, using: &random)
        let old4 = table4.entries
        let old6 = table6.entries
        id = newID
        table4 = RoutingTable(ownID: newID, settings: settings.routing, now: now)
        table6 = RoutingTable(ownID: newID, settings: settings.routing, now: now)
        for entry in old4 { _ = table4.nodeResponded(entry.info, verified: entry.verified, now: entry.lastSeen) }
        for entry in old6 { _ = table6.nodeResponded(entry.info, verified: entry.verified, now: entry.lastSeen) }
        actions.append(.nodeIDChanged(newID))
    }

    /// BEP 42 enforcement: with `enforceSecureIDs`, a node whose id does not conform to its (public) address
    /// stays out of the table.
    private func admissible(_ node: NodeInfo) -> Bool {
        !configuration.enforceSecureIDs || node.address.host.isLocal || node.id.isSecure(for: node.address.host)
    }

    // MARK: Sending

    private mutating func sendPing(to address: NodeAddress, expectedID: NodeID?, now: Instant, into actions: inout [DHTAction]) {
        guard enabled(address.family), address.port != 0 else { return }
        // One ping at a time per address.
        guard !transactions.values.contains(where: { $0.address == address }) else { return }
        sendQuery(.ping, to: address, expectedID: expectedID, purpose: .ping, now: now, into: &actions)
    }

    private mutating func sendQuery(
        _ method: KRPCQuery.Method, to address: NodeAddress, expectedID: NodeID?, purpose: Transaction.Purpose,
        now: Instant, into actions: inout [DHTAction]
    ) {
        guard transactions.count < configuration.maxPendingQueries else {
            if case .lookup(let lookupID) = purpose { lookups[lookupID]?.failed(address, timedOut: false) }
            if case .announce(let lookupID) = purpose { lookups[lookupID]?.announceAnswered(success: false) }
            return
        }
        var key = UInt32(truncatingIfNeeded: random.next())
        while transactions[key] != nil { key = UInt32(truncatingIfNeeded: random.next()) }
        let serial = nextSerial
        nextSerial &+= 1
        transactions[key] = Transaction(
            address: address, expectedID: expectedID, purpose: purpose, serial: serial, sentAt: now)
        hardDeadlines.append(Deadline(transaction: key, serial: serial, time: now + configuration.queryTimeout))
        if case .lookup = purpose {
            softDeadlines.insert(Deadline(transaction: key, serial: serial, time: now + softTimeout))
        }
        let transactionID = [UInt8(key >> 24), UInt8(key >> 16 & 0xFF), UInt8(key >> 8 & 0xFF), UInt8(key & 0xFF)]
        let message = KRPCMessage(
            transactionID: transactionID, version: configuration.version, readOnly: configuration.readOnly,
            body: .query(KRPCQuery(id: id, method: method)))
        send(message, to: address, into: &actions)
    }

    /// Two smoothed round trips, within the configured bounds (the upper bound until there is a sample).
    var softTimeout: Interval {
        let bounds = configuration.lookup
        guard let smoothedRoundTrip else { return bounds.softTimeout }
        return min(bounds.softTimeout, max(bounds.minSoftTimeout, smoothedRoundTrip * 2))
    }

    /// RFC 6298's smoothing (one eighth of each new sample).
    private mutating func sampleRoundTrip(_ sample: Interval) {
        guard let current = smoothedRoundTrip else {
            smoothedRoundTrip = sample
            return
        }
        smoothedRoundTrip = .nanoseconds(current.nanoseconds + (sample.nanoseconds - current.nanoseconds) / 8)
    }

    private mutating func send(_ message: KRPCMessage, to address: NodeAddress, into actions: inout [DHTAction]) {
        statistics.datagramsSent += 1
        actions.append(.send(message.encoded, to: address))
    }

    /// Asks for a wake-up when the next deadline is earlier than the one asked for.
    private mutating func finishEvent(now: Instant, into actions: inout [DHTAction]) {
        // Deadlines of queries already answered are dropped from the front, so that no wake-up is asked for them.
        func stale(_ deadline: Deadline) -> Bool { transactions[deadline.transaction]?.serial != deadline.serial }
        while let first = hardDeadlines.first, stale(first) { hardDeadlines.removeFirst() }
        while let first = softDeadlines.min, stale(first) { softDeadlines.removeMin() }
        let next = nextDeadline
        if let scheduled, scheduled <= next, scheduled > now { return }
        scheduled = next
        actions.append(.schedule(at: next))
    }
}
