/// A node's contact: its id and address. On the wire, "compact node info" (BEP 5, "Contact Encoding"):
/// the 20-byte id then the compact address, 26 bytes for IPv4 and 38 for IPv6 (BEP 32, `nodes6`).
public struct NodeInfo: Hashable, Sendable, CustomStringConvertible {
    public var id: NodeID
    public var address: NodeAddress

    public init(id: NodeID, address: NodeAddress) {
        self.id = id
        self.address = address
    }

    public var description: String { "\(id.hex.prefix(8))…@\(address)" }

    /// Appends the compact node info (26 or 38 bytes).
    public func appendCompact(to output: inout [UInt8]) {
        id.append(to: &output)
        address.appendCompact(to: &output)
    }

    /// Reads a string of concatenated compact node infos of one family.
    static func decodeList(
        _ bytes: ArraySlice<UInt8>, family: NodeAddress.Family, field: String, offset: Int
    ) throws(DHTError) -> [NodeInfo] {
        let size = family.compactNodeLength
        guard bytes.count % size == 0 else {
            throw DHTError(.notMultiple(of: size, actual: bytes.count), field: field, at: offset)
        }
        var result: [NodeInfo] = []
        result.reserveCapacity(bytes.count / size)
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let idEnd = start + NodeID.byteCount
            let end = start + size
            result.append(NodeInfo(id: NodeID(bytes: bytes[start..<idEnd])!, address: NodeAddress(compact: bytes[idEnd..<end])!))
            start = end
        }
        return result
    }
}
