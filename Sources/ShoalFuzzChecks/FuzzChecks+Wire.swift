import NIOCore
import ShoalCore
import ShoalWire

extension FuzzChecks {
    /// Peer wire messages (anacrolix's `peer_protocol` round-trip fuzz): every message decoded from
    /// the input re-encodes to exactly the bytes it was decoded from; a refused input is refused
    /// with a ``WireError`` that consumed nothing; feeding the input in small pieces decodes the same
    /// messages and fails the same way. The decoded messages then drive a state machine, whose
    /// bounds must hold whatever they say.
    static func wireMessages(_ bytes: [UInt8]) {
        // A torrent of 1001 pieces (so a bitfield has spare bits), and an unknown piece count.
        let whole = decodeAll(bytes, pieceCount: 1001, chunk: bytes.count)
        _ = decodeAll(bytes, pieceCount: nil, chunk: bytes.count)
        // Byte at a time for short inputs, about 16 pieces for long ones (keeps the fuzzer fast).
        let chunk = bytes.count <= 64 ? 1 : 1 + bytes.count / 16
        let pieces = decodeAll(bytes, pieceCount: 1001, chunk: chunk)
        precondition(whole.messages == pieces.messages, "split input decoded to other messages")
        precondition(whole.error == pieces.error, "split input failed differently")
        drive(whole.messages)
    }

    private static func decodeAll(
        _ bytes: [UInt8], pieceCount: Int?, chunk: Int
    ) -> (messages: [PeerMessage], error: WireError?) {
        var decoder = PeerMessageDecoder(pieceCount: pieceCount)
        var buffer = ByteBuffer()
        var messages: [PeerMessage] = []
        var fed = 0
        repeat {
            let next = min(bytes.count, fed + max(chunk, 1))
            buffer.writeBytes(bytes[fed..<next])
            fed = next
            while true {
                let before = buffer
                do {
                    guard let message = try decoder.next(from: &buffer) else {
                        precondition(buffer.readerIndex == before.readerIndex, "nil consumed bytes")
                        break
                    }
                    let consumed = before.getSlice(at: before.readerIndex, length: buffer.readerIndex - before.readerIndex)!
                    precondition(message.encoded == consumed, "\(message) did not re-encode to its bytes")
                    precondition(message.encodedLength == consumed.readableBytes, "\(message) has the wrong length")
                    messages.append(message)
                } catch {
                    precondition(buffer.readerIndex == before.readerIndex, "an error consumed bytes")
                    return (messages, error)
                }
            }
        } while fed < bytes.count
        return (messages, nil)
    }

    /// Feeds messages to a connection that negotiated everything, answering its events as a torrent
    /// might, and checks that its bounds hold and that once closed it stays silent.
    private static func drive(_ messages: [PeerMessage]) {
        var random = SplitMix(seed: UInt64(messages.count))
        let infoHash = Digest20(bytes: [UInt8](repeating: 0xAB, count: 20))!
        let ourID = PeerID(bytes: Array("-SH0100-aaaaaaaaaaaa".utf8))!
        let theirID = PeerID(bytes: Array("-TR3000-bbbbbbbbbbbb".utf8))!
        var ours = Bitfield(count: 1001)
        for index in stride(from: 0, to: 1001, by: 3) { ours.set(index) }
        let configuration = PeerConnection.Configuration(
            infoHash: infoHash, peerID: ourID, reserved: [.extensionProtocol, .fastExtension, .dht],
            dhtPort: 6881, maxPeerRequests: 20, maxOutstandingRequests: 30)
        var machine = PeerConnection.StateMachine(configuration: configuration, ourPieces: ours, now: Instant.zero)
        var now = Instant.zero
        var actions = machine.start(now: now)
        actions += machine.receivedHandshake(
            Handshake(reserved: [.extensionProtocol, .fastExtension, .dht], infoHash: infoHash, peerID: theirID), now: now)
        actions += machine.unchoke(now: now)
        actions += machine.setInterested(true, now: now)
        for message in messages {
            now = now + .seconds(Int64(random.next() % 30))
            var step = machine.received(message, now: now)
            for action in step {
                guard case .emit(let event) = action else { continue }
                switch event {
                case .blockRequested(let block):
                    if random.next() % 2 == 0 {
                        step += machine.sendBlock(block, data: ByteBuffer(repeating: 7, count: Int(block.length)), now: now)
                    } else {
                        step += machine.rejectRequest(block, now: now)
                    }
                case .peerHas(let piece), .allowedFast(let piece), .suggested(let piece):
                    step += machine.request(BlockRequest(piece: piece, offset: 0, length: 16384), now: now)
                case .peerUnchoked:
                    step += machine.request(BlockRequest(piece: 1, offset: 16384, length: 100), now: now)
                case .peerInterested:
                    step += machine.choke(now: now)
                case .snubbed:
                    if let first = machine.outstandingRequests.first { step += machine.cancel(first.block, now: now) }
                default:
                    break
                }
            }
            step += machine.timerFired(now: now)
            precondition(machine.peerRequests.count <= configuration.maxPeerRequests, "peer request queue over its bound")
            precondition(machine.outstandingRequests.count <= configuration.maxOutstandingRequests, "too many requests")
            precondition(machine.allowedFastFromPeer.count <= configuration.maxAllowedFast, "allowed fast set over its bound")
            if machine.phase == .closed {
                precondition(step.last.map { if case .close = $0 { true } else { false } } ?? false,
                    "closed without a close action")
                precondition(machine.received(.interested, now: now).isEmpty, "a closed machine acted")
                precondition(machine.timerFired(now: now + .seconds(3600)).isEmpty, "a closed machine acted")
                return
            }
        }
        _ = machine.timerFired(now: now + .seconds(3600))
        precondition(machine.phase == .closed, "an idle peer outlived the inactivity timeout")
    }

    /// SplitMix64, so the drive is deterministic for an input.
    private struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
