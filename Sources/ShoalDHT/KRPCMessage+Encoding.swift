import ShoalBencode

extension KRPCMessage {
    /// The datagram: canonical bencode (keys sorted, BEP 3), written directly without building a value tree.
    public var encoded: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        encode(into: &output)
        return output
    }

    /// Appends the datagram's bytes to `output`.
    public func encode(into output: inout [UInt8]) {
        output.append(UInt8(ascii: "d"))
        switch body {
        case .query(let query):
            Self.key("a", &output)
            query.encodeArguments(into: &output)
        case .error(let error):
            Self.key("e", &output)
            output.append(UInt8(ascii: "l"))
            BencodeEncoder.append(.integer(error.code), to: &output)
            BencodeEncoder.appendString(error.message, to: &output)
            output.append(UInt8(ascii: "e"))
        case .response:
            break
        }
        if let requesterAddress {
            Self.key("ip", &output)
            BencodeEncoder.appendString(requesterAddress.compact, to: &output)
        }
        if case .query(let query) = body {
            Self.key("q", &output)
            BencodeEncoder.appendString(query.method.name, to: &output)
        }
        if case .response(let response) = body {
            Self.key("r", &output)
            response.encodeValues(into: &output)
        }
        if readOnly {
            Self.key("ro", &output)
            BencodeEncoder.append(.integer(1), to: &output)
        }
        Self.key("t", &output)
        BencodeEncoder.appendString(transactionID, to: &output)
        if let version {
            Self.key("v", &output)
            BencodeEncoder.appendString(version, to: &output)
        }
        Self.key("y", &output)
        let type: StaticString
        switch body {
        case .query: type = "q"
        case .response: type = "r"
        case .error: type = "e"
        }
        BencodeEncoder.appendString(type.utf8Bytes, to: &output)
        output.append(UInt8(ascii: "e"))
    }

    static func key(_ key: StaticString, _ output: inout [UInt8]) {
        BencodeEncoder.appendString(key.utf8Bytes, to: &output)
    }
}

extension KRPCQuery {
    func encodeArguments(into output: inout [UInt8]) {
        output.append(UInt8(ascii: "d"))
        KRPCMessage.key("id", &output)
        BencodeEncoder.appendString(id.bytes, to: &output)
        switch method {
        case .ping, .unknown:
            break
        case .findNode(let target, let want):
            KRPCMessage.key("target", &output)
            BencodeEncoder.appendString(target.bytes, to: &output)
            Self.encode(want, into: &output)
        case .getPeers(let infoHash, let want):
            KRPCMessage.key("info_hash", &output)
            BencodeEncoder.appendString(infoHash.bytes, to: &output)
            Self.encode(want, into: &output)
        case .announcePeer(let infoHash, let port, let token, let impliedPort):
            if impliedPort {
                KRPCMessage.key("implied_port", &output)
                BencodeEncoder.append(.integer(1), to: &output)
            }
            KRPCMessage.key("info_hash", &output)
            BencodeEncoder.appendString(infoHash.bytes, to: &output)
            KRPCMessage.key("port", &output)
            BencodeEncoder.append(.integer(Int64(port)), to: &output)
            KRPCMessage.key("token", &output)
            BencodeEncoder.appendString(token, to: &output)
        }
        output.append(UInt8(ascii: "e"))
    }

    private static func encode(_ want: Want, into output: inout [UInt8]) {
        guard !want.isEmpty else { return }
        KRPCMessage.key("want", &output)
        output.append(UInt8(ascii: "l"))
        if want.contains(.ipv4) { KRPCMessage.key("n4", &output) }
        if want.contains(.ipv6) { KRPCMessage.key("n6", &output) }
        output.append(UInt8(ascii: "e"))
    }
}

extension KRPCResponse {
    func encodeValues(into output: inout [UInt8]) {
        output.append(UInt8(ascii: "d"))
        KRPCMessage.key("id", &output)
        BencodeEncoder.appendString(id.bytes, to: &output)
        for (key, list, family) in [("nodes", nodes, .ipv4), ("nodes6", nodes6, .ipv6)]
            as [(StaticString, [NodeInfo]?, NodeAddress.Family)]
        {
            guard let list else { continue }
            KRPCMessage.key(key, &output)
            // Only entries of the key's family belong under it (26 bytes under `nodes`, 38 under `nodes6`).
            let count = list.reduce(0) { $0 + ($1.address.family == family ? 1 : 0) }
            output.append(contentsOf: String(count * family.compactNodeLength).utf8)
            output.append(UInt8(ascii: ":"))
            for node in list where node.address.family == family { node.appendCompact(to: &output) }
        }
        if let token {
            KRPCMessage.key("token", &output)
            BencodeEncoder.appendString(token, to: &output)
        }
        if let values {
            KRPCMessage.key("values", &output)
            output.append(UInt8(ascii: "l"))
            for peer in values { BencodeEncoder.appendString(peer.compact, to: &output) }
            output.append(UInt8(ascii: "e"))
        }
        output.append(UInt8(ascii: "e"))
    }
}

extension StaticString {
    var utf8Bytes: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: utf8Start, count: utf8CodeUnitCount)
    }
}
