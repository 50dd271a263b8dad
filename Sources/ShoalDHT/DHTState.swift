import ShoalBencode

/// What a node saves so that a restart rejoins without bootstrap (BEP 5: "The routing table should be saved
/// between invocations"): its id and its nodes, as a small bencoded file:
/// `d2:id20:...5:nodes<26n bytes>6:nodes6<38n bytes>7:versioni1ee`.
public struct DHTState: Hashable, Sendable {
    public static let formatVersion: Int64 = 1
    /// The most nodes saved (and read back).
    public static let maxNodes = 2048

    public var id: NodeID
    public var nodes: [NodeInfo]

    public init(id: NodeID, nodes: [NodeInfo]) {
        self.id = id
        self.nodes = Array(nodes.prefix(Self.maxNodes))
    }

    /// The file's bytes.
    public var encoded: [UInt8] {
        var v4: [UInt8] = []
        var v6: [UInt8] = []
        for node in nodes.prefix(Self.maxNodes) {
            if node.address.family == .ipv4 { node.appendCompact(to: &v4) } else { node.appendCompact(to: &v6) }
        }
        return BencodeValue.dictionary([
            "id": .string(id.bytes), "nodes": .string(v4), "nodes6": .string(v6), "version": .integer(Self.formatVersion),
        ]).encoded
    }

    /// Reads a saved state, strictly (the file may be damaged or not ours).
    public init(decoding bytes: [UInt8]) throws(DHTError) {
        let limits = BencodeLimits(maxDepth: 2, maxItems: 16, maxStringLength: Self.maxNodes * 38, maxIntegerDigits: 19)
        let document: BencodeDocument
        do {
            document = try BencodeDocument(decoding: bytes, limits: limits)
        } catch {
            throw DHTError(.bencode(error.code), field: "", at: error.offset)
        }
        let root = document.root
        guard root.kind == .dictionary else { throw DHTError(.wrongType(expected: .dictionary), field: "", at: 0) }
        guard let versionNode = root["version"] else { throw DHTError(.missingField, field: "version", at: 0) }
        guard let version = versionNode.integer else {
            throw DHTError(.wrongType(expected: .integer), field: "version", at: versionNode.span.lowerBound)
        }
        guard version == Self.formatVersion else {
            throw DHTError(.unsupportedVersion(version), field: "version", at: versionNode.span.lowerBound)
        }
        guard let idNode = root["id"] else { throw DHTError(.missingField, field: "id", at: 0) }
        guard let idBytes = idNode.bytes, let id = NodeID(bytes: idBytes) else {
            throw DHTError(
                .wrongLength(expected: 20, actual: idNode.bytes?.count ?? 0), field: "id", at: idNode.span.lowerBound)
        }
        var nodes: [NodeInfo] = []
        for (key, family) in [("nodes", NodeAddress.Family.ipv4), ("nodes6", .ipv6)] {
            guard let node = root[key] else { continue }
            guard let list = node.bytes else {
                throw DHTError(.wrongType(expected: .string), field: key, at: node.span.lowerBound)
            }
            nodes += try NodeInfo.decodeList(list, family: family, field: key, offset: node.contentOffset)
        }
        self.init(id: id, nodes: nodes)
    }
}
