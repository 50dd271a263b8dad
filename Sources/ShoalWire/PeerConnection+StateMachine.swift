import NIOCore
import ShoalCore

extension PeerConnection {
    /// The rules of one peer connection (BEP 3 "peer protocol", BEP 6, BEP 10), as a value: events
    /// in (the peer's handshake and messages, timer ticks, the torrent's commands, each with the
    /// current time), ``PeerAction``s out. It owns no socket and reads no clock.
    ///
    /// Phases: awaiting the peer's handshake → awaiting its first message (only then may a
    /// `bitfield`, `have all` or `have none` come, BEP 3 and BEP 6) → established → closed.
    /// BEP 10 `extended` messages, `port` and keep-alives do not end the first-message phase:
    /// Transmission sends its extension handshake before its bitfield.
    ///
    /// It tracks the four choke and interest flags (BEP 3), the peer's pieces, our requests to the
    /// peer (with the time each was sent) and the peer's requests to us (bounded by our `reqq`),
    /// the allowed-fast sets both ways (BEP 6), keep-alive, inactivity and snubbing.
    ///
    /// Decisions:
    /// - Choking a fast-extension peer rejects its queued requests except those for allowed-fast
    ///   pieces (BEP 6 "Reject Request"); without the extension they are dropped silently (BEP 3).
    ///   A request that arrives while we choke is rejected, or ignored without the extension.
    /// - A cancelled request to a fast-extension peer stays outstanding until the peer answers it
    ///   (BEP 6: every request gets exactly one answer, even when cancelled); a block that answers it
    ///   is still delivered. Without the extension a cancelled request is forgotten at once.
    /// - A block we did not request is reported (``PeerEvent/unexpectedBlock(_:data:)``), not
    ///   fatal. BEP 6 says to close, but a late block is harmless and libtorrent keeps the peer too.
    /// - A reject for a request we did not send is reported (``PeerEvent/unexpectedReject(_:)``)
    ///   and not fatal: BEP 6 says SHOULD close, libtorrent ignores it. It costs nothing, and
    ///   closing would lose a peer over a bookkeeping difference.
    /// - A BEP 6 message from a peer without the fast extension closes the connection (BEP 6
    ///   MUST); so does a BEP 10 message without the extension protocol.
    /// - A `have`, `request` or `bitfield` outside the torrent's pieces closes the connection;
    ///   `allowed fast` and `suggest piece` outside them are ignored (they are advisory).
    public struct StateMachine: Sendable {
        /// Where the connection is.
        public enum Phase: Hashable, Sendable {
            case awaitingHandshake
            /// Handshakes exchanged; the peer's first message may be its bitfield.
            case awaitingFirstMessage
            case established
            case closed
        }

        public let configuration: Configuration

        private var state: State
        private var local: Local
        /// Everything about the peer, while the state is `.active` (moved out while a method changes it).
        private var active: Active?

        /// A machine for a new connection, its handshake timer starting at `now`. `ourPieces` is
        /// nil while the torrent's metadata (and so its piece count) is unknown.
        public init(configuration: Configuration, ourPieces: Bitfield?, now: Instant) {
            self.configuration = configuration
            self.local = Local(ourPieces: ourPieces, lastSent: now)
            self.state = .awaitingHandshake(AwaitingHandshake(startedAt: now))
        }

        // MARK: State

        private enum State: Sendable {
            case awaitingHandshake(AwaitingHandshake)
            /// What is known of the peer is in `active`: apart, it can be moved out and back without a copy.
            case active
            case closed(WireError?)
        }

        /// What exists in every phase: our side.
        private struct Local: Sendable {
            var ourPieces: Bitfield?
            var amChoking = true
            var amInterested = false
            var lastSent: Instant

            var pieceCount: Int? { ourPieces?.count }
        }

        private struct AwaitingHandshake: Sendable {
            var startedAt: Instant
            var sentHandshake = false
        }

        /// Everything about the peer, once the handshakes are exchanged.
        private struct Active: Sendable {
            var peerID: PeerID
            var peerReserved: ReservedBits
            /// Both sides set the fast extension bit (BEP 6).
            var fast: Bool
            /// Both sides set the extension protocol bit (BEP 10).
            var extensions: Bool
            var receivedFirstMessage = false
            var peerChoking = true
            var peerInterested = false
            var peerPieces: PeerPieces
            /// Our requests to the peer, oldest first.
            var outstanding = OutstandingRequests()
            /// The peer's requests to us, oldest first (`sentAt`: when each arrived). Found by block in O(1): a seed
            /// looks each one up when it arrives, when its block is read and when it is sent.
            var peerRequests = OutstandingRequests()
            /// Pieces the peer lets us request while choked.
            var allowedFastFromPeer: Set<UInt32> = []
            /// Pieces we let the peer request while we choke it.
            var allowedFastToPeer: Set<UInt32> = []
            var peerExtensions: ExtensionHandshake?
            var lastReceived: Instant
            /// Since when we wait for a block (the first live request, or the last block).
            var waitingSince: Instant
            var snubbed = false

            var liveOutstanding: [BlockRequest] { outstanding.live }

            var hasLiveOutstanding: Bool { outstanding.liveCount > 0 }
        }

        /// The actions a transition produces, and whether it ends the connection.
        private struct Output {
            var actions: [PeerAction] = []
            var error: WireError?
            /// `error` is set (testing this instead of binding `error` saves a copy of it per transition).
            var failed = false
            var sent = false

            mutating func send(_ message: PeerMessage) {
                actions.append(.send(message))
                sent = true
            }

            mutating func emit(_ event: PeerEvent) { actions.append(.emit(event)) }

            init() {}

            /// Output that continues `actions` (it takes them; ``finish(_:now:)`` gives them back, added to).
            init(continuing actions: inout [PeerAction]) {
                swap(&self.actions, &actions)
            }

            mutating func fail(_ error: WireError) {
                guard !failed else { return }
                self.error = error
                failed = true
            }
        }

        // MARK: Inspection

        public var phase: Phase {
            switch state {
            case .awaitingHandshake: .awaitingHandshake
            case .active: active?.receivedFirstMessage == true ? .established : .awaitingFirstMessage
            case .closed: .closed
            }
        }

        /// Why the connection closed, once closed by the machine (nil after ``connectionClosed()``).
        public var closeReason: WireError? {
            if case .closed(let error) = state { return error }
            return nil
        }

        /// Our pieces (nil while the piece count is unknown).
        public var ourPieces: Bitfield? { local.ourPieces }
        /// The torrent's piece count, once known.
        public var pieceCount: Int? {
            @inline(never) get { local.ourPieces?.count }
        }
        /// We choke the peer (BEP 3 `am_choking`; connections start choked).
        public var amChoking: Bool { local.amChoking }
        /// We are interested in the peer (`am_interested`).
        public var amInterested: Bool { local.amInterested }
        /// The peer chokes us (`peer_choking`).
        public var peerChoking: Bool {
            // The torrent reads these per block: `active?.peerChoking` copied the whole active state to the stack
            // to find out whether it is there; the state says so without a copy (it is active exactly when
            // `active` is set).
            guard case .active = state else { return true }
            return active.unsafelyUnwrapped.peerChoking
        }
        /// The peer is interested in us (`peer_interested`).
        public var peerInterested: Bool {
            guard case .active = state else { return false }
            return active.unsafelyUnwrapped.peerInterested
        }
        /// The peer's id, after its handshake.
        public var peerID: PeerID? { active?.peerID }
        /// The reserved bits of the peer's handshake, after it.
        public var peerReserved: ReservedBits? { active?.peerReserved }
        /// Both sides support the fast extension (BEP 6).
        public var supportsFastExtension: Bool { active?.fast ?? false }
        /// Both sides support the extension protocol (BEP 10).
        public var supportsExtensionProtocol: Bool { active?.extensions ?? false }
        /// The peer's pieces, once the piece count is known.
        public var peerPieces: Bitfield? { active?.peerPieces.known }
        /// Our requests awaiting an answer, oldest first, with the time each was sent (cancelled
        /// ones not included).
        public var outstandingRequests: [(block: BlockRequest, sentAt: Instant)] {
            guard let active else { return [] }
            return active.outstanding.entries.compactMap { $0.cancelledAt == nil ? ($0.block, $0.sentAt) : nil }
        }
        /// How many of our requests await an answer (cancelled ones not included), without building a list.
        public var outstandingRequestCount: Int {
            guard case .active = state else { return 0 }
            return active.unsafelyUnwrapped.outstanding.liveCount
        }
        /// The peer's requests we have not answered, oldest first.
        public var peerRequests: [BlockRequest] { active?.peerRequests.entries.map(\.block) ?? [] }
        /// Pieces the peer lets us request while it chokes us (BEP 6).
        public var allowedFastFromPeer: Set<UInt32> { active?.allowedFastFromPeer ?? [] }
        /// Pieces we let the peer request while we choke it (BEP 6).
        public var allowedFastToPeer: Set<UInt32> { active?.allowedFastToPeer ?? [] }
        /// The peer's extension handshake (BEP 10), all of them merged.
        public var peerExtensions: ExtensionHandshake? { active?.peerExtensions }
        /// The peer has sent no block for the snub timeout while we had requests outstanding.
        public var isSnubbed: Bool {
            guard case .active = state else { return false }
            return active.unsafelyUnwrapped.snubbed
        }
        /// What a refill of our request queue depends on, in one read: ``amInterested``, ``peerChoking``,
        /// ``outstandingRequestCount`` and ``isSnubbed``. (A caller that holds the machine in a collection copies
        /// all of it, some 600 bytes, for every property it reads; the torrent reads these for every block.)
        public var requestQueueState: (amInterested: Bool, peerChoking: Bool, outstanding: Int, snubbed: Bool) {
            guard case .active = state else { return (local.amInterested, true, 0, false) }
            return (
                local.amInterested, active.unsafelyUnwrapped.peerChoking, active.unsafelyUnwrapped.outstanding.liveCount,
                active.unsafelyUnwrapped.snubbed
            )
        }

        // MARK: Reading in place

        // A machine is a large value (some 665 bytes). A caller that keeps machines in a collection copies
        // the whole machine, with a retain and release of every queue and set, to call one of these getters
        // from another module (a memmove per peer at each tick and deadline query: the largest single cost
        // of a simulated swarm of thousands). Through `inout` the machine is read where it is stored.
        // `@inline(never)`: inlined into the caller (the optimizer does so across modules), the copy was back.

        /// ``nextDeadline``, read in place.
        /// (The logic itself is here, on the machine in place: the getter on `self` copies the machine to pass
        /// it to a method.)
        @inline(never)
        public static func nextDeadline(of machine: inout StateMachine) -> Instant? {
            switch machine.state {
            case .awaitingHandshake(let waiting):
                return waiting.startedAt + machine.configuration.handshakeTimeout
            case .active:
                // Field by field: binding `active` would copy all of it (some 600 bytes, with retains).
                guard machine.active != nil else { return nil }
                var deadline = min(
                    machine.local.lastSent + machine.configuration.keepAliveInterval,
                    machine.active.unsafelyUnwrapped.lastReceived + machine.configuration.inactivityTimeout)
                if !machine.active.unsafelyUnwrapped.snubbed && machine.active.unsafelyUnwrapped.hasLiveOutstanding {
                    deadline = min(deadline, machine.active.unsafelyUnwrapped.waitingSince + machine.configuration.snubTimeout)
                }
                if let cancelled = machine.active.unsafelyUnwrapped.outstanding.earliestCancellation {
                    deadline = min(deadline, cancelled + machine.configuration.snubTimeout)
                }
                return deadline
            case .closed:
                return nil
            }
        }

        /// ``requestQueueState``, read in place.
        @inline(never)
        public static func requestQueueState(of machine: inout StateMachine) -> (
            amInterested: Bool, peerChoking: Bool, outstanding: Int, snubbed: Bool
        ) {
            machine.requestQueueState
        }

        /// ``peerInterested``, ``amInterested``, ``amChoking`` and ``peerChoking``, read in place.
        @inline(never)
        public static func interest(of machine: inout StateMachine) -> (
            peerInterested: Bool, amInterested: Bool, amChoking: Bool, peerChoking: Bool
        ) {
            (machine.peerInterested, machine.amInterested, machine.amChoking, machine.peerChoking)
        }

        /// When ``timerFired(now:)`` next has something to do; nil once closed.
        public var nextDeadline: Instant? {
            var machine = self
            return Self.nextDeadline(of: &machine)
        }

        // MARK: Handshake

        /// Our handshake, to send first (an outgoing connection) or as soon as the peer's
        /// ``Handshake/Head`` has named our torrent (an incoming one).
        public mutating func start(now: Instant) -> [PeerAction] {
            guard case .awaitingHandshake(var waiting) = state, !waiting.sentHandshake else { return [] }
            waiting.sentHandshake = true
            state = .awaitingHandshake(waiting)
            local.lastSent = now
            return [.sendHandshake(ourHandshake)]
        }

        /// The handshake we send.
        public var ourHandshake: Handshake {
            Handshake(reserved: configuration.reserved, infoHash: configuration.infoHash, peerID: configuration.peerID)
        }

        /// The peer's whole handshake arrived (BEP 3): check it, then send our bitfield (or BEP 6
        /// `have all`/`have none`), our BEP 10 handshake, our DHT port, and any choke or interest
        /// change the torrent asked for before now. Sends our handshake first if ``start(now:)``
        /// was not called.
        public mutating func receivedHandshake(_ handshake: Handshake, now: Instant) -> [PeerAction] {
            guard case .awaitingHandshake(let waiting) = state else { return [] }
            var actions: [PeerAction] = []
            if !waiting.sentHandshake { actions.append(.sendHandshake(ourHandshake)) }
            local.lastSent = now
            if handshake.infoHash != configuration.infoHash {
                state = .closed(WireError(.infoHashMismatch, offset: 28))
                return actions + [.close(WireError(.infoHashMismatch, offset: 28))]
            }
            if handshake.peerID == configuration.peerID {
                state = .closed(WireError(.connectedToSelf, offset: 48))
                return actions + [.close(WireError(.connectedToSelf, offset: 48))]
            }
            let ours = configuration.reserved
            let theirs = handshake.reserved
            let active = Active(
                peerID: handshake.peerID,
                peerReserved: theirs,
                fast: ours.contains(.fastExtension) && theirs.contains(.fastExtension),
                extensions: ours.contains(.extensionProtocol) && theirs.contains(.extensionProtocol),
                peerPieces: PeerPieces(pieceCount: local.ourPieces?.count),
                lastReceived: now,
                waitingSince: now)
            var output = Output()
            output.emit(.connected(peerID: handshake.peerID, reserved: theirs))

            let pieces = local.ourPieces
            if active.fast {
                if pieces?.isEmpty ?? true {
                    output.send(.haveNone)
                } else if let pieces, pieces.isComplete {
                    output.send(.haveAll)
                } else if let pieces {
                    output.send(.bitfield(pieces))
                }
            } else if let pieces, !pieces.isEmpty {
                output.send(.bitfield(pieces))
            }
            if active.extensions, var extensionHandshake = configuration.extensionHandshake {
                if extensionHandshake.requestQueueLength == nil {
                    extensionHandshake.requestQueueLength = configuration.maxPeerRequests
                }
                output.send(extensionHandshake.message)
            }
            if let port = configuration.dhtPort, theirs.contains(.dht), ours.contains(.dht) {
                output.send(.port(port))
            }
            if !local.amChoking { output.send(.unchoke) }
            if local.amInterested { output.send(.interested) }
            state = .active
            self.active = active
            return actions + output.actions
        }

        // MARK: Messages from the peer

        /// A message from the peer (decoded by ``PeerMessageDecoder``).
        public mutating func received(_ message: PeerMessage, now: Instant) -> [PeerAction] {
            var actions: [PeerAction] = []
            received(message, now: now, into: &actions)
            return actions
        }

        /// ``received(_:now:)``, its actions appended to `actions` (a caller that reuses one array for every
        /// message saves an allocation per message).
        public mutating func received(_ message: PeerMessage, now: Instant, into actions: inout [PeerAction]) {
            switch state {
            case .awaitingHandshake:
                actions += close(WireError(.messageBeforeHandshake, messageID: message.id), now: now)
            case .closed:
                return
            case .active:
                guard active != nil else { preconditionFailure("the state is not active") }
                var output = Output(continuing: &actions)
                active!.lastReceived = now
                // Changed where it is stored (`active!`): a copy would retain and release every queue and set
                // of it, twice per block.
                Self.receive(
                    message, active: &active!, local: local, configuration: configuration, now: now, output: &output)
                actions = finish(&output, now: now)
            }
        }

        private static func receive(
            _ message: PeerMessage, active: inout Active, local: Local, configuration: Configuration, now: Instant,
            output: inout Output
        ) {
            func fail(_ code: WireError.Code) {
                let declared = UInt32(truncatingIfNeeded: message.length)
                output.fail(WireError(code, messageID: message.id, declaredLength: declared))
            }
            func failing(_ error: WireError) {
                var error = error
                error.messageID = message.id
                output.fail(error)
            }
            let limits = configuration.limits
            let pieceCount = local.pieceCount

            // The first message: only a bitfield, have all or have none may say what the peer has;
            // anything else (but extension messages, port and keep-alives) means it has nothing.
            switch message {
            case .haveAll, .haveNone:
                guard !active.receivedFirstMessage else { return fail(.lateBitfield) }
            case .bitfield:
                break
            case .keepAlive, .extended, .port, .unknown:
                break
            default:
                if !active.receivedFirstMessage {
                    active.receivedFirstMessage = true
                    if let none = active.peerPieces.setAll(false) { output.emit(.peerPieces(none)) }
                }
            }
            if let id = message.id, let known = PeerMessageID(rawValue: id), known.isFastExtension, !active.fast {
                return fail(.fastExtensionNotNegotiated)
            }

            switch message {
            case .keepAlive, .unknown:
                break

            case .bitfield(let bytes) where active.receivedFirstMessage:
                // aria2 sends its bitfield after its extension handshake and interest, once it has some
                // pieces. Read a late bitfield as haves: it can add pieces, never take them away.
                guard let count = active.peerPieces.known?.count,
                    let field = Bitfield(count: count, bytes: bytes.readableBytesView)
                else {
                    failing(WireError(.lateBitfield, messageID: message.id))
                    break
                }
                for index in field.setIndices {
                    do {
                        if try active.peerPieces.have(UInt32(index), maxBytes: limits.maxBitfieldBytes) {
                            output.emit(.peerHas(piece: UInt32(index)))
                        }
                    } catch {
                        failing(error)
                        break
                    }
                }

            case .bitfield(let bytes):
                active.receivedFirstMessage = true
                do {
                    if let field = try active.peerPieces.setBitfield(bytes, maxBytes: limits.maxBitfieldBytes) {
                        output.emit(.peerPieces(field))
                    }
                } catch {
                    failing(error)
                }

            case .haveAll, .haveNone:
                active.receivedFirstMessage = true
                if let field = active.peerPieces.setAll(message == .haveAll) { output.emit(.peerPieces(field)) }

            case .have(let piece):
                do {
                    if try active.peerPieces.have(piece, maxBytes: limits.maxBitfieldBytes) {
                        output.emit(.peerHas(piece: piece))
                    }
                } catch {
                    failing(error)
                }

            case .choke:
                guard !active.peerChoking else { break }
                active.peerChoking = true
                if active.fast {
                    output.emit(.peerChoked(returned: []))
                } else {
                    let returned = active.liveOutstanding
                    active.outstanding.removeAll()
                    output.emit(.peerChoked(returned: returned))
                }

            case .unchoke:
                guard active.peerChoking else { break }
                active.peerChoking = false
                output.emit(.peerUnchoked)

            case .interested:
                guard !active.peerInterested else { break }
                active.peerInterested = true
                output.emit(.peerInterested)

            case .notInterested:
                guard active.peerInterested else { break }
                active.peerInterested = false
                output.emit(.peerNotInterested)

            case .request(let block):
                if let error = Self.blockError(block, limits: limits, pieceCount: pieceCount) { return failing(error) }
                guard active.peerRequests.entry(for: block) == nil else { break }
                let have = local.ourPieces?[Int(block.piece)] ?? false
                let allowed = !local.amChoking || active.allowedFastToPeer.contains(block.piece)
                if have && allowed && active.peerRequests.count < configuration.maxPeerRequests {
                    active.peerRequests.append(.init(block: block, sentAt: now))
                    output.emit(.blockRequested(block))
                } else if active.fast {
                    output.send(.rejectRequest(block))
                }

            case .cancel(let block):
                guard active.peerRequests.remove(block) != nil else { break }
                output.emit(.requestCancelled(block))
                // BEP 6: even a cancelled request gets exactly one answer.
                if active.fast { output.send(.rejectRequest(block)) }

            case .piece(let piece, let offset, let data):
                let length = UInt32(truncatingIfNeeded: data.readableBytes)
                let block = BlockRequest(piece: piece, offset: offset, length: length)
                guard active.outstanding.remove(block) != nil else {
                    output.emit(.unexpectedBlock(block, data: data))
                    break
                }
                active.waitingSince = now
                output.emit(.blockReceived(block, data: data))
                if active.snubbed {
                    active.snubbed = false
                    output.emit(.unsnubbed)
                }

            case .rejectRequest(let block):
                guard let entry = active.outstanding.remove(block) else {
                    output.emit(.unexpectedReject(block))
                    break
                }
                if entry.cancelledAt == nil { output.emit(.requestRejected(block)) }

            case .allowedFast(let piece):
                guard Self.isValid(piece: piece, pieceCount: pieceCount),
                    active.allowedFastFromPeer.count < configuration.maxAllowedFast
                else { break }
                if active.allowedFastFromPeer.insert(piece).inserted { output.emit(.allowedFast(piece: piece)) }

            case .suggestPiece(let piece):
                guard Self.isValid(piece: piece, pieceCount: pieceCount) else { break }
                output.emit(.suggested(piece: piece))

            case .port(let port):
                output.emit(.dhtPort(port))

            case .extended(let id, let payload):
                guard active.extensions else { return fail(.extensionProtocolNotNegotiated) }
                guard id == 0 else {
                    output.emit(.extensionMessage(id: id, payload: payload))
                    break
                }
                do {
                    let handshake = try ExtensionHandshake(decoding: payload)
                    let merged = active.peerExtensions?.merging(handshake) ?? handshake
                    active.peerExtensions = merged
                    output.emit(.extensionHandshake(merged))
                } catch {
                    failing(error)
                }
            }
        }

        /// Whether `piece` is a piece of the torrent (true while the count is unknown).
        private static func isValid(piece: UInt32, pieceCount: Int?) -> Bool {
            guard let pieceCount else { return true }
            return Int(piece) < pieceCount
        }

        /// Why a block named by a request cannot be one of the torrent's, if it cannot.
        private static func blockError(_ block: BlockRequest, limits: WireLimits, pieceCount: Int?) -> WireError? {
            let limit = limits.maxBlockLength
            guard block.length > 0, block.length <= limit else {
                return WireError(.invalidBlockLength(block.length, limit: limit))
            }
            if let pieceCount, Int(block.piece) >= pieceCount {
                return WireError(.pieceIndexOutOfRange(block.piece, pieceCount: pieceCount))
            }
            return nil
        }

        // MARK: Timers

        /// Time passed: close a connection whose handshake or traffic stopped, report snubbing,
        /// forget cancelled requests never answered, and send a keep-alive when due.
        public mutating func timerFired(now: Instant) -> [PeerAction] {
            switch state {
            case .awaitingHandshake(let waiting):
                guard now >= waiting.startedAt + configuration.handshakeTimeout else { return [] }
                return close(WireError(.handshakeTimeout), now: now)
            case .closed:
                return []
            case .active:
                // Most ticks find nothing due: tell so without touching the state (a tick visits every peer).
                guard let deadline = Self.nextDeadline(of: &self), now >= deadline else { return [] }
                let configuration = configuration
                let lastSent = local.lastSent
                return modifyActive(now: now) { active, output in
                    if now >= active.lastReceived + configuration.inactivityTimeout {
                        output.fail(WireError(.inactivityTimeout))
                        return
                    }
                    let snubTimeout = configuration.snubTimeout
                    active.outstanding.removeAll { entry in
                        entry.cancelledAt.map { now >= $0 + snubTimeout } ?? false
                    }
                    let late = now >= active.waitingSince + configuration.snubTimeout
                    if !active.snubbed && active.hasLiveOutstanding && late {
                        active.snubbed = true
                        output.emit(.snubbed)
                    }
                    if now >= lastSent + configuration.keepAliveInterval {
                        output.send(.keepAlive)
                    }
                }
            }
        }

        // MARK: Commands from the torrent

        /// Choke the peer (BEP 3). With the fast extension its queued requests are rejected,
        /// except for allowed-fast pieces (BEP 6); without it they are dropped. Each withdrawn
        /// request is reported as ``PeerEvent/requestCancelled(_:)``.
        public mutating func choke(now: Instant) -> [PeerAction] {
            guard !local.amChoking else { return [] }
            local.amChoking = true
            return modifyActive(now: now) { active, output in
                output.send(.choke)
                var dropped: [BlockRequest] = []
                for entry in active.peerRequests.entries {
                    let block = entry.block
                    if active.fast && active.allowedFastToPeer.contains(block.piece) { continue }
                    dropped.append(block)
                    output.emit(.requestCancelled(block))
                    if active.fast { output.send(.rejectRequest(block)) }
                }
                for block in dropped { active.peerRequests.remove(block) }
            }
        }

        /// Unchoke the peer (BEP 3): its requests will be served.
        public mutating func unchoke(now: Instant) -> [PeerAction] {
            guard local.amChoking else { return [] }
            local.amChoking = false
            return modifyActive(now: now) { _, output in output.send(.unchoke) }
        }

        /// Tell the peer whether we want its pieces (BEP 3 `interested`, `not interested`).
        public mutating func setInterested(_ interested: Bool, now: Instant) -> [PeerAction] {
            guard local.amInterested != interested else { return [] }
            local.amInterested = interested
            return modifyActive(now: now) { _, output in output.send(interested ? .interested : .notInterested) }
        }

        /// Request a block. Sent when the connection is established, the block is one of the peer's
        /// pieces and within the block limit, and the peer does not choke us (or, BEP 6, the piece
        /// is allowed fast); otherwise the block is returned at once
        /// (``PeerEvent/requestsReturned(_:)``). A block already outstanding is not sent twice.
        public mutating func request(_ block: BlockRequest, now: Instant) -> [PeerAction] {
            request([block], now: now)
        }

        /// Request blocks, in order: what ``request(_:now:)`` does for each, in one transition (a refill of a
        /// peer's queue asks for several blocks at once).
        public mutating func request(_ blocks: [BlockRequest], now: Instant) -> [PeerAction] {
            guard case .active = state else { return blocks.map { .emit(.requestsReturned([$0])) } }
            let outstandingLimit = configuration.maxOutstandingRequests
            let limits = configuration.limits
            let pieceCount = self.pieceCount
            return modifyActive(now: now) { active, output in
                for block in blocks {
                    if let existing = active.outstanding.entry(for: block) {
                        if existing.cancelledAt != nil { output.emit(.requestsReturned([block])) }
                        continue
                    }
                    let allowed =
                        !active.peerChoking || (active.fast && active.allowedFastFromPeer.contains(block.piece))
                    guard Self.blockError(block, limits: limits, pieceCount: pieceCount) == nil,
                        active.peerPieces.has(block.piece), allowed,
                        active.outstanding.count < outstandingLimit
                    else {
                        output.emit(.requestsReturned([block]))
                        continue
                    }
                    if !active.hasLiveOutstanding { active.waitingSince = now }
                    active.outstanding.append(.init(block: block, sentAt: now))
                    output.send(.request(block))
                }
            }
        }

        /// Cancel an outstanding request (BEP 3 `cancel`). With the fast extension it stays
        /// outstanding, invisibly, until the peer answers; a block that answers it is still
        /// delivered as ``PeerEvent/blockReceived(_:data:)``.
        public mutating func cancel(_ block: BlockRequest, now: Instant) -> [PeerAction] {
            modifyActive(now: now) { active, output in
                if active.fast {
                    guard active.outstanding.cancel(block, now: now) else { return }
                } else {
                    guard active.outstanding.entry(for: block)?.cancelledAt == nil,
                        active.outstanding.remove(block) != nil
                    else { return }
                }
                output.send(.cancel(block))
            }
        }

        /// We completed and checked a piece: tell the peer (BEP 3 `have`), unless it has the piece and
        /// ``Configuration/sendsRedundantHaves`` is off. Before the handshake it is only recorded (the
        /// bitfield we send will hold it).
        public mutating func announceHave(piece: UInt32, now: Instant) -> [PeerAction] {
            guard local.ourPieces?.set(Int(piece)) == true else { return [] }
            if !configuration.sendsRedundantHaves, case .active = state,
                active.unsafelyUnwrapped.peerPieces.has(piece)
            {
                return []
            }
            return modifyActive(now: now) { _, output in output.send(.have(piece: piece)) }
        }

        /// Answer a peer's request with its block (BEP 3 `piece`). Sent only if the request is still
        /// queued (not cancelled, not dropped by a choke) and `data` holds exactly its length.
        public mutating func sendBlock(_ block: BlockRequest, data: ByteBuffer, now: Instant) -> [PeerAction] {
            var actions: [PeerAction] = []
            sendBlock(block, data: data, now: now, into: &actions)
            return actions
        }

        /// ``sendBlock(_:data:now:)``, its actions appended to `actions`.
        public mutating func sendBlock(
            _ block: BlockRequest, data: ByteBuffer, now: Instant, into actions: inout [PeerAction]
        ) {
            modifyActive(now: now, into: &actions) { active, output in
                guard data.readableBytes == Int(block.length), active.peerRequests.remove(block) != nil else { return }
                output.send(.piece(piece: block.piece, offset: block.offset, block: data))
            }
        }

        /// Whether the peer's request is still queued (worth reading from disk).
        public func isRequestQueued(_ block: BlockRequest) -> Bool {
            guard case .active = state else { return false }
            return active.unsafelyUnwrapped.peerRequests.entry(for: block) != nil
        }

        /// Refuse a peer's queued request (the piece is not available, or we lack resources):
        /// BEP 6 `reject request` with the fast extension, silently without.
        public mutating func rejectRequest(_ block: BlockRequest, now: Instant) -> [PeerAction] {
            modifyActive(now: now) { active, output in
                guard active.peerRequests.remove(block) != nil else { return }
                if active.fast { output.send(.rejectRequest(block)) }
            }
        }

        /// Let the peer request `piece` while we choke it (BEP 6 `allowed fast`; the torrent
        /// computes the canonical set). Only with the fast extension.
        public mutating func allowFast(piece: UInt32, now: Instant) -> [PeerAction] {
            // `pieceCount` is not inlined here: Swift 6.3's optimizer fails its own ownership check
            // ("Found ownership error") on this function when it is.
            let pieceCount = self.pieceCount
            return modifyActive(now: now) { active, output in
                guard active.fast, Self.isValid(piece: piece, pieceCount: pieceCount),
                    active.allowedFastToPeer.insert(piece).inserted
                else { return }
                output.send(.allowedFast(piece))
            }
        }

        /// Suggest a piece to the peer (BEP 6 `suggest piece`). Only with the fast extension.
        public mutating func suggest(piece: UInt32, now: Instant) -> [PeerAction] {
            let pieceCount = self.pieceCount
            return modifyActive(now: now) { active, output in
                guard active.fast, Self.isValid(piece: piece, pieceCount: pieceCount) else { return }
                output.send(.suggestPiece(piece))
            }
        }

        /// Send a BEP 10 extension message under the id the *peer* assigned (its handshake's `m`).
        /// Only with the extension protocol; id 0 is the handshake.
        public mutating func sendExtended(id: UInt8, payload: ByteBuffer, now: Instant) -> [PeerAction] {
            modifyActive(now: now) { active, output in
                guard active.extensions else { return }
                output.send(.extended(id: id, payload: payload))
            }
        }

        /// The torrent's metadata arrived (BEP 9): the piece count is now known. What the peer
        /// announced before is checked against it and reported as ``PeerEvent/peerPieces(_:)``
        /// (the decoder's ``PeerMessageDecoder/pieceCount`` must be set too). Ignored once known.
        public mutating func setPieceCount(_ count: Int, now: Instant) -> [PeerAction] {
            guard local.ourPieces == nil, count >= 0 else { return [] }
            local.ourPieces = Bitfield(count: count)
            return modifyActive(now: now) { active, output in
                active.allowedFastFromPeer = active.allowedFastFromPeer.filter { Int($0) < count }
                do throws(WireError) {
                    let field = try active.peerPieces.resolve(pieceCount: count)
                    if active.receivedFirstMessage || !field.isEmpty { output.emit(.peerPieces(field)) }
                } catch {
                    output.fail(error)
                }
            }
        }

        /// Close the connection for the torrent's reason; outstanding requests are returned.
        public mutating func close(_ error: WireError, now: Instant) -> [PeerAction] {
            switch state {
            case .closed:
                return []
            case .awaitingHandshake:
                state = .closed(error)
                return [.close(error)]
            case .active:
                return modifyActive(now: now) { _, output in output.fail(error) }
            }
        }

        /// The runtime lost the connection (the peer closed it, or a write failed): outstanding
        /// requests are returned, and nothing more happens.
        public mutating func connectionClosed() -> [PeerAction] {
            defer {
                state = .closed(nil)
                active = nil
            }
            guard let active, active.hasLiveOutstanding else { return [] }
            return [.emit(.requestsReturned(active.liveOutstanding))]
        }

        // MARK: Helpers

        /// Runs `body` on the active state where it is stored (nothing before the handshake or after closing).
        /// Binding an enum payload (`case .active(var active) = state`), or moving the state out and back,
        /// copied it: every queue and set retained and then released, about twice per block.
        private mutating func modifyActive(
            now: Instant, _ body: (inout Active, inout Output) -> Void
        ) -> [PeerAction] {
            var actions: [PeerAction] = []
            modifyActive(now: now, into: &actions, body)
            return actions
        }

        /// ``modifyActive(now:_:)``, the actions appended to `actions`.
        private mutating func modifyActive(
            now: Instant, into actions: inout [PeerAction], _ body: (inout Active, inout Output) -> Void
        ) {
            guard case .active = state, active != nil else { return }
            var output = Output(continuing: &actions)
            body(&active!, &output)
            actions = finish(&output, now: now)
        }

        /// Ends a transition of the active state: closes if it failed (returning outstanding requests first).
        private mutating func finish(_ output: inout Output, now: Instant) -> [PeerAction] {
            if output.sent { local.lastSent = now }
            var actions: [PeerAction] = []
            swap(&actions, &output.actions)
            guard output.failed, let error = output.error else { return actions }
            state = .closed(error)
            let returned = active?.liveOutstanding ?? []
            active = nil
            if !returned.isEmpty { actions.append(.emit(.requestsReturned(returned))) }
            actions.append(.close(error))
            return actions
        }
    }
}
