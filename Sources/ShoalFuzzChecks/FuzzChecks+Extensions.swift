import NIOCore
import ShoalCore
import ShoalWire

extension FuzzChecks {
    /// BEP 9 `ut_metadata` and BEP 11 `ut_pex` payloads: the input is decoded as both. A refused input
    /// is refused with a ``WireError``; an accepted one encodes to bytes that decode to the same
    /// message, and encoding again gives the same bytes.
    public static func extensions(_ bytes: [UInt8]) {
        let payload = ByteBuffer(bytes: bytes)
        if let message = try? MetadataMessage.decode(payload) {
            let encoded = message.payload
            guard let again = try? MetadataMessage.decode(encoded) else {
                fatalError("\(message) re-encoded to a payload that does not decode")
            }
            precondition(again == message, "\(message) changed across a round trip: \(again)")
            precondition(again.payload == encoded, "\(message) does not encode the same way twice")
            if case .data(_, let totalSize, let block) = message {
                precondition(block.readableBytes == MetadataMessage.length(ofPiece: message.piece, totalSize: totalSize))
            }
        }
        if let pex = try? PeerExchangeMessage(decoding: payload) {
            precondition(pex.added.count <= 2 * PeerExchangeMessage.maxEntries, "too many added peers")
            precondition(pex.dropped.count <= 2 * PeerExchangeMessage.maxEntries, "too many dropped peers")
            precondition(pex.added.allSatisfy { $0.address.port != 0 } && pex.dropped.allSatisfy { $0.port != 0 })
            guard let again = try? PeerExchangeMessage(decoding: ByteBuffer(bytes: pex.encoded)) else {
                fatalError("\(pex) re-encoded to a payload that does not decode")
            }
            precondition(again == pex, "\(pex) changed across a round trip: \(again)")
            precondition(again.encoded == pex.encoded, "\(pex) does not encode the same way twice")
        }
    }
}
