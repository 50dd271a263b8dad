import ShoalBencode

extension KRPCMessage {
    /// Decodes one datagram, strictly: every field BEP 5, 32, 42 and 43 define must have its type and length,
    /// and every limit in `limits` holds. Unknown keys are ignored (BEP 5 lets messages grow new keys).
    public init(decoding bytes: [UInt8], limits: KRPCLimits = .standard) throws(DHTError) {
        guard bytes.count <= limits.maxDatagramLength else {
            throw DHTError(.datagramTooLarge(length: bytes.count, limit: limits.maxDatagramLength), field: "", at: 0)
        }
        let document: BencodeDocument
        do {
            document = try BencodeDocument(decoding: bytes, limits: limits.bencode)
        } catch {
            throw DHTError(.bencode(error.code), field: "", at: error.offset)
        }
        var reader = KRPCFieldReader(limits: limits)
        self = try reader.message(document.root)
    }
}

/// Reads the fields of a decoded KRPC dictionary, naming each failure by its path.
struct KRPCFieldReader {
    let limits: KRPCLimits
    /// Set once `t` is read, when `y` is `q`: a failure after that can be answered with error 203.
    var replyTransactionID: [UInt8]?

    init(limits: KRPCLimits) { self.limits = limits }

    mutating func message(_ root: BencodeNode) throws(DHTError) -> KRPCMessage {
        guard root.kind == .dictionary else { throw DHTError(.wrongType(expected: .dictionary), field: "", at: 0) }
        let transactionID = try string(root, "t", path: "t", limit: limits.maxTransactionIDLength)
        let type = try string(root, "y", path: "y", limit: 1)
        let version = try optionalString(root, "v", path: "v", limit: limits.maxVersionLength)
        var requester: NodeAddress?
        if let ip = root["ip"] {
            guard let bytes = ip.bytes else { throw failure(.wrongType(expected: .string), "ip", ip) }
            guard let address = NodeAddress(compact: bytes) else {
                throw failure(.wrongLength(expected: bytes.count > 6 ? 18 : 6, actual: bytes.count), "ip", ip)
            }
            requester = address
        }
        var readOnly = false
        if let ro = root["ro"] {
            guard let value = ro.integer else { throw failure(.wrongType(expected: .integer), "ro", ro) }
            readOnly = value == 1
        }
        let body: KRPCMessage.Body
        switch type.first {
        case UInt8(ascii: "q"):
            replyTransactionID = transactionID
            body = .query(try query(root))
        case UInt8(ascii: "r"):
            body = .response(try response(root))
        case UInt8(ascii: "e"):
            body = .error(try errorReply(root))
        default:
            throw failure(.unknownMessageType, "y", root["y"]!)
        }
        return KRPCMessage(
            transactionID: transactionID, version: version, requesterAddress: requester, readOnly: readOnly, body: body)
    }

    private mutating func query(_ root: BencodeNode) throws(DHTError) -> KRPCQuery {
        let name = try string(root, "q", path: "q", limit: limits.maxTextLength)
        guard let arguments = root["a"] else { throw failure(.missingField, "a", root) }
        guard arguments.kind == .dictionary else { throw failure(.wrongType(expected: .dictionary), "a", arguments) }
        let id = try nodeID(arguments, "id", path: "a.id")
        let method: KRPCQuery.Method
        switch String(decoding: name, as: UTF8.self) {
        case "ping":
            method = .ping
        case "find_node":
            method = .findNode(target: try nodeID(arguments, "target", path: "a.target"), want: try want(arguments))
        case "get_peers":
            method = .getPeers(infoHash: try nodeID(arguments, "info_hash", path: "a.info_hash"), want: try want(arguments))
        case "announce_peer":
            let infoHash = try nodeID(arguments, "info_hash", path: "a.info_hash")
            let token = try string(arguments, "token", path: "a.token", limit: limits.maxTokenLength)
            var impliedPort = false
            if let implied = arguments["implied_port"] {
                guard let value = implied.integer else {
                    throw failure(.wrongType(expected: .integer), "a.implied_port", implied)
                }
                impliedPort = value != 0
            }
            var port: UInt16 = 0
            if let portNode = arguments["port"] {
                guard let value = portNode.integer else { throw failure(.wrongType(expected: .integer), "a.port", portNode) }
                guard (0...65535).contains(value) else { throw failure(.outOfRange, "a.port", portNode) }
                port = UInt16(value)
            } else if !impliedPort {
                throw failure(.missingField, "a.port", arguments)
            }
            method = .announcePeer(infoHash: infoHash, port: port, token: token, impliedPort: impliedPort)
        default:
            method = .unknown(name: name)
        }
        return KRPCQuery(id: id, method: method)
    }

    private mutating func want(_ arguments: BencodeNode) throws(DHTError) -> KRPCQuery.Want {
        guard let node = arguments["want"] else { return [] }
        guard let list = node.list else { throw failure(.wrongType(expected: .list), "a.want", node) }
        var want: KRPCQuery.Want = []
        for element in list {
            // BEP 32: other strings may appear and must be ignored; anything but a string is malformed.
            guard let bytes = element.bytes else { throw failure(.wrongType(expected: .string), "a.want", element) }
            if bytes.elementsEqual("n4".utf8) { want.insert(.ipv4) }
            if bytes.elementsEqual("n6".utf8) { want.insert(.ipv6) }
        }
        return want
    }

    private mutating func response(_ root: BencodeNode) throws(DHTError) -> KRPCResponse {
        guard let values = root["r"] else { throw failure(.missingField, "r", root) }
        guard values.kind == .dictionary else { throw failure(.wrongType(expected: .dictionary), "r", values) }
        var response = KRPCResponse(id: try nodeID(values, "id", path: "r.id"))
        if let nodes = values["nodes"] {
            guard let bytes = nodes.bytes else { throw failure(.wrongType(expected: .string), "r.nodes", nodes) }
            response.nodes = try NodeInfo.decodeList(bytes, family: .ipv4, field: "r.nodes", offset: nodes.contentOffset)
        }
        if let nodes = values["nodes6"] {
            guard let bytes = nodes.bytes else { throw failure(.wrongType(expected: .string), "r.nodes6", nodes) }
            response.nodes6 = try NodeInfo.decodeList(bytes, family: .ipv6, field: "r.nodes6", offset: nodes.contentOffset)
        }
        response.token = try optionalString(values, "token", path: "r.token", limit: limits.maxTokenLength)
        if let list = values["values"] {
            guard let elements = list.list else { throw failure(.wrongType(expected: .list), "r.values", list) }
            guard elements.count <= limits.maxValues else {
                throw failure(.tooMany(limit: limits.maxValues), "r.values", list)
            }
            var peers: [NodeAddress] = []
            peers.reserveCapacity(elements.count)
            for element in elements {
                guard let bytes = element.bytes else { throw failure(.wrongType(expected: .string), "r.values", element) }
                // BEP 32: a list may mix 6-byte and 18-byte entries.
                guard let peer = NodeAddress(compact: bytes) else {
                    throw failure(.wrongLength(expected: bytes.count > 6 ? 18 : 6, actual: bytes.count), "r.values", element)
                }
                peers.append(peer)
            }
            response.values = peers
        }
        return response
    }

    private mutating func errorReply(_ root: BencodeNode) throws(DHTError) -> KRPCErrorReply {
        guard let node = root["e"] else { throw failure(.missingField, "e", root) }
        guard let list = node.list else { throw failure(.wrongType(expected: .list), "e", node) }
        guard let first = list.first else { throw failure(.missingField, "e", node) }
        guard let code = first.integer else { throw failure(.wrongType(expected: .integer), "e", first) }
        var message: [UInt8] = []
        if list.count > 1 {
            guard let bytes = list[1].bytes else { throw failure(.wrongType(expected: .string), "e", list[1]) }
            message = Array(bytes.prefix(limits.maxTextLength))
        }
        return KRPCErrorReply(code: code, messageBytes: message)
    }

    // MARK: Fields

    private func failure(_ code: DHTError.Code, _ path: String, _ node: BencodeNode) -> DHTError {
        DHTError(code, field: path, at: node.span.lowerBound, replyTransactionID: replyTransactionID)
    }

    private func string(_ dictionary: BencodeNode, _ key: String, path: String, limit: Int) throws(DHTError) -> [UInt8] {
        guard let value = try optionalString(dictionary, key, path: path, limit: limit) else {
            throw failure(.missingField, path, dictionary)
        }
        return value
    }

    private func optionalString(
        _ dictionary: BencodeNode, _ key: String, path: String, limit: Int
    ) throws(DHTError) -> [UInt8]? {
        guard let node = dictionary[key] else { return nil }
        guard let bytes = node.bytes else { throw failure(.wrongType(expected: .string), path, node) }
        guard bytes.count <= limit else { throw failure(.tooLong(limit: limit), path, node) }
        return Array(bytes)
    }

    private func nodeID(_ dictionary: BencodeNode, _ key: String, path: String) throws(DHTError) -> NodeID {
        guard let node = dictionary[key] else { throw failure(.missingField, path, dictionary) }
        guard let bytes = node.bytes else { throw failure(.wrongType(expected: .string), path, node) }
        guard let id = NodeID(bytes: bytes) else {
            throw failure(.wrongLength(expected: NodeID.byteCount, actual: bytes.count), path, node)
        }
        return id
    }
}
